"""Celery metrics: task runtimes and outcomes, queue depths from the broker, and a real worker's own endpoint."""

import time
import urllib.request

import pytest
from django.conf import settings as django_settings

from elbia.celery import app
from elbia.tasks import purge_sent_outbox_messages
from resources.models import ResourceStatus
from resources.tasks import provision_resource
from tests.observability.scrape import TOKEN, parse, scrape, value
from tests.resources.factories import ComputeFactory
from tests.servers import celery, free_port

PURGE = "elbia.tasks.purge_sent_outbox_messages"


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.ELBIA_METRICS_TOKEN = TOKEN


@pytest.fixture
def empty_queue():
    app.conf.broker_url = django_settings.CELERY_BROKER_URL
    app.control.purge()
    yield
    app.control.purge()


@pytest.mark.django_db
def test_task_runs_are_timed_and_counted_by_outcome(client, account, settings):
    settings.ELBIA_PROVIDER = "tests.resources.providers.BrokenProvider"
    broken = ComputeFactory(account=account, status=ResourceStatus.PENDING, provisioned_at=None)
    before = scrape(client)
    purge_sent_outbox_messages.apply()
    purge_sent_outbox_messages.apply()
    provision_resource.apply(args=[broken.pk])
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("elbia_celery_tasks_total", task=PURGE, outcome="success") == 2
    assert delta("elbia_celery_task_duration_seconds_count", task=PURGE) == 2
    provision = "resources.tasks.provision_resource"
    assert delta("elbia_celery_tasks_total", task=provision, outcome="failure") == 1
    assert delta("elbia_celery_tasks_total", task=provision, outcome="success") == 0


@pytest.mark.django_db
def test_queue_depth_is_read_from_the_broker(client, empty_queue):
    assert value(scrape(client), "elbia_celery_queue_messages", queue="elbia") == 0
    for _ in range(3):
        app.send_task(PURGE, queue="elbia")
    samples = scrape(client)
    assert value(samples, "elbia_celery_queue_messages", queue="elbia") == 3
    assert value(samples, "elbia_broker_up") == 1


@pytest.mark.django_db
def test_a_broker_that_is_down_is_said_and_the_scrape_still_answers(client, monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    started = time.monotonic()
    samples = scrape(client)
    assert time.monotonic() - started < 5
    assert value(samples, "elbia_broker_up") == 0
    assert ("elbia_celery_queue_messages", frozenset({("queue", "elbia")})) not in samples


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_prefork_worker_serves_the_sum_of_its_processes(tmp_path, empty_queue):
    port = free_port()
    metrics_dir = tmp_path / "worker-metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left over")
    with celery(
        "worker",
        tmp_path / "worker.log",
        ELBIA_WORKER_METRICS_PORT=str(port),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    ):
        for _ in range(12):
            app.send_task(PURGE, queue="elbia")
        deadline = time.monotonic() + 60
        done = 0
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                    samples = parse(answer.read().decode())
                done = value(samples, "elbia_celery_tasks_total", task=PURGE, outcome="success")
            except OSError:
                pass
            if done >= 12:
                break
            time.sleep(0.3)
        assert done == 12, (tmp_path / "worker.log").read_text()[-3000:]
        assert value(samples, "elbia_celery_task_duration_seconds_count", task=PURGE) == 12
        assert not (metrics_dir / "counter_999999.db").exists()
        assert len({path.name.rsplit("_", 1)[1] for path in metrics_dir.glob("counter_*.db")}) >= 1
