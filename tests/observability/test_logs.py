"""Structured logs: LOG_FORMAT=json gives one JSON object per line; a request id follows the work into its task."""

import json
import logging
import sys

import pytest
from django.db import connection

from elbia.observability.logs import JsonFormatter
from resources.models import Resource
from tests.factories import UserFactory
from tests.servers import call, celery, gunicorn, wait_for

COMPUTE = {"region": "us-east-1", "instance_type": "t2.micro", "vpc": "default"}


def json_lines(text: str) -> list[dict]:
    """Every line of ``text`` as a JSON object (any line that is not one fails the test)."""
    documents = []
    for line in text.splitlines():
        if line.strip():
            try:
                documents.append(json.loads(line))
            except ValueError:
                pytest.fail(f"not a JSON line: {line!r}")
    return documents


def test_the_formatter_writes_one_object_with_the_known_fields():
    formatter = JsonFormatter()
    record = logging.LogRecord("elbia.test", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    record.request_id, record.route, record.status = "req-1", "/v1/resources/{id}", 404
    document = json.loads(formatter.format(record))
    assert document.pop("time").endswith("+00:00")
    assert document == {
        "level": "WARNING",
        "logger": "elbia.test",
        "message": "hello world",
        "request_id": "req-1",
        "route": "/v1/resources/{id}",
        "status": 404,
    }
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        record = logging.LogRecord("elbia.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line
    assert "ValueError: boom" in json.loads(line)["exception"]


@pytest.mark.django_db
def test_each_request_logs_its_line(api, account, settings, caplog):
    settings.LOG_REQUESTS = True
    with caplog.at_level(logging.INFO, logger="elbia.request"):
        response = api.get("/v1/resources/res_nothing", HTTP_X_REQUEST_ID="req-log-1")
    assert response.status_code == 404
    (record,) = [record for record in caplog.records if record.name == "elbia.request"]
    document = json.loads(JsonFormatter().format(record))
    assert {key: document[key] for key in ("message", "route", "method", "status", "account_id")} == {
        "message": "GET /v1/resources/{id} 404",
        "route": "/v1/resources/{id}",
        "method": "GET",
        "status": 404,
        "account_id": account.id,
    }
    assert document["duration_ms"] >= 0


@pytest.mark.django_db
def test_no_request_line_in_the_plain_format(api, caplog):
    with caplog.at_level(logging.INFO, logger="elbia.request"):
        api.get("/v1/resources")
    assert not [record for record in caplog.records if record.name == "elbia.request"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_request_and_the_task_it_queued_log_json_lines_with_one_request_id(tmp_path, issue_token):
    user = UserFactory()
    token = issue_token(user, scopes=["resources:read", "resources:write"]).access_token
    web_log, worker_log, beat_log = tmp_path / "web.log", tmp_path / "worker.log", tmp_path / "beat.log"
    with (
        gunicorn(web_log, LOG_FORMAT="json") as (port, _),
        celery("worker", worker_log, LOG_FORMAT="json", ELBIA_PROVISION_DELAY="0"),
        celery("beat", beat_log, "--schedule", str(tmp_path / "beat-schedule"), LOG_FORMAT="json", CELERY_QUIET="1"),
    ):
        status, headers, body = call(
            port, "POST", "/v1/resources", token, COMPUTE, headers={"X-Request-ID": "req-follow-me-1"}
        )
        assert (status, headers["x-request-id"]) == (201, "req-follow-me-1")
        public_id = body["id"]

        def active():
            connection.close()  # a fresh read of what the worker committed
            return Resource.objects.get(public_id=public_id).status == "active"

        wait_for(active, 60, message=f"never provisioned:\n{worker_log.read_text()[-3000:]}")
        wait_for(lambda: "provision_resource" in worker_log.read_text(), 10)

    web, worker = json_lines(web_log.read_text()), json_lines(worker_log.read_text())
    assert any(line["logger"].startswith("celery.beat") for line in json_lines(beat_log.read_text()))
    (request_line,) = [
        line for line in web if line["logger"] == "elbia.request" and line["request_id"] == "req-follow-me-1"
    ]
    assert request_line["route"] == "/v1/resources"
    assert (request_line["method"], request_line["status"]) == ("POST", 201)
    assert request_line["account_id"] == user.account_id
    assert {"time", "level", "message", "duration_ms"} <= set(request_line)
    assert any(line["logger"] == "gunicorn.error" for line in web)  # gunicorn's own lines are JSON too
    from_the_request = [line for line in worker if line["request_id"] == "req-follow-me-1"]
    assert any("provision_resource" in line["message"] for line in from_the_request), worker[-20:]
    assert any(public_id in line["message"] for line in from_the_request)  # the lifecycle's own line
    assert {line["level"] for line in worker} <= {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


def test_an_unknown_log_format_stops_the_process_naming_it():
    from tests.test_settings import STARTS, assert_stops_naming, start

    assert_stops_naming(start(STARTS["manage.py"], LOG_FORMAT="xml"), "LOG_FORMAT")
