"""/metrics under gunicorn with two workers: one scrape adds up what every worker recorded."""

import re

import pytest

from tests.observability.scrape import TOKEN, parse, value
from tests.servers import ACCESS_LOG_WITH_PID, call, fire, gunicorn, served_by

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def drive_both_workers(port, log_path) -> int:
    """Send /readyz (a few milliseconds each) in bursts until both workers have answered; how many were sent."""
    sent = 0
    for _ in range(10):
        answers = fire(24, 8, lambda: call(port, "GET", "/readyz"))
        assert {status for status, _, _ in answers} == {200}
        sent += len(answers)
        if len(served_by(log_path)) == 2:
            return sent
    pytest.fail("one worker answered every request")


def readiness_checks(log_path) -> int:
    return len(re.findall(r'"GET /readyz HTTP', log_path.read_text()))


def test_scrape_adds_up_the_workers_and_starts_from_an_empty_directory(tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over by a previous run")
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(
        log_path, *ACCESS_LOG_WITH_PID, ELBIA_METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    ) as (port, _):
        drive_both_workers(port, log_path)
        assert call(port, "GET", "/metrics")[0] == 404
        status, _, text = call(port, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, text
        samples = parse(text)
        assert value(samples, "elbia_http_requests_total", route="/readyz", method="GET", status="200") == (
            readiness_checks(log_path)
        )
        assert value(samples, "elbia_http_request_duration_seconds_count", route="/readyz", method="GET") == (
            readiness_checks(log_path)
        )
        assert value(samples, "elbia_http_requests_total", route="/metrics", method="GET", status="404") == 1
        assert not (metrics_dir / "counter_999999.db").exists()
    assert metrics_dir.is_dir()


def test_without_a_configured_directory_a_temporary_one_serves_and_is_removed(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(log_path, "--preload", *ACCESS_LOG_WITH_PID, ELBIA_METRICS_TOKEN=TOKEN, TMPDIR=str(temporary)) as (
        port,
        _,
    ):
        drive_both_workers(port, log_path)
        status, _, text = call(port, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert status == 200, text
        assert value(parse(text), "elbia_http_requests_total", route="/readyz", method="GET", status="200") == (
            readiness_checks(log_path)
        )
        assert [path.name.startswith("elbia-metrics-web-") for path in temporary.iterdir()] == [True]
    assert list(temporary.iterdir()) == []
