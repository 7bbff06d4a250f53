"""The transactional outbox: written with the change, sent after commit or by the relay, never lost, in order."""

import base64
import json
import os
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.utils import timezone

from elbia import outbox
from elbia.celery import app
from elbia.models import OutboxMessage
from elbia.outbox import enqueue, outbox_purge_sent, outbox_relay
from resources.models import Resource, ResourceStatus
from tests.resources.factories import ComputeFactory, VpcFactory
from tests.servers import BASE_DIR

QUEUE = django_settings.CELERY_TASK_DEFAULT_QUEUE
PROVISION = "resources.tasks.provision_resource"


@pytest.fixture
def broker():
    """The tests' Redis broker, its queue emptied; ``broker.queued()``: the args of the messages waiting on
    it, oldest first (Celery's Redis transport pushes on the left and pops on the right)."""
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    client.delete(QUEUE)

    def queued() -> list:
        raw = reversed(client.lrange(QUEUE, 0, -1))
        return [json.loads(base64.b64decode(json.loads(message)["body"]))[0] for message in raw]

    client.queued = queued
    yield client
    client.delete(QUEUE)


@pytest.fixture
def broker_down(monkeypatch):
    """Point the app at a port where no broker listens; the fast path's pause is forgotten before and after."""
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(outbox, "_broker_down_until", 0.0)
    yield
    monkeypatch.setattr(app.conf, "broker_url", django_settings.CELERY_BROKER_URL)


@pytest.fixture(autouse=True)
def _fast_path_open(monkeypatch):
    monkeypatch.setattr(outbox, "_broker_down_until", 0.0)


def unsent() -> list[tuple[str, list]]:
    return list(OutboxMessage.objects.filter(sent_at__isnull=True).order_by("id").values_list("task_name", "args"))


@pytest.mark.django_db(transaction=True)
class TestEnqueue:
    def test_the_message_is_written_with_the_change_and_sent_after_commit(self, broker):
        with transaction.atomic():
            enqueue(PROVISION, 41)
            assert unsent() == [(PROVISION, [41])]
            assert broker.queued() == []  # nothing leaves before the commit
        message = OutboxMessage.objects.get()
        assert message.sent_at is not None and message.attempts == 1
        assert broker.queued() == [[41]]

    def test_a_rolled_back_change_queues_nothing(self, broker):
        with pytest.raises(RuntimeError), transaction.atomic():
            enqueue(PROVISION, 41)
            raise RuntimeError("the write failed")
        assert not OutboxMessage.objects.exists()
        assert broker.queued() == []

    def test_the_request_id_travels_with_the_message(self, broker):
        from elbia.api.middleware import current_request_id

        token = current_request_id.set("req_trace-me")
        try:
            enqueue(PROVISION, 41)
        finally:
            current_request_id.reset(token)
        assert OutboxMessage.objects.get().request_id == "req_trace-me"
        assert json.loads(broker.lindex(QUEUE, 0))["headers"]["elbia_request_id"] == "req_trace-me"

    def test_a_broker_outage_leaves_the_message_for_the_relay(self, broker, broker_down):
        enqueue(PROVISION, 41)  # autocommit: sent (or not) at once
        message = OutboxMessage.objects.get()
        assert message.sent_at is None and message.attempts == 1
        assert "Error" in message.last_error
        enqueue(PROVISION, 42)  # the broker failed a moment ago: not even tried
        assert OutboxMessage.objects.get(args=[42]).attempts == 0

    def test_sends_share_one_broker_connection(self, broker, monkeypatch):
        opened = []
        real = app.connection_for_write
        monkeypatch.setattr(app, "connection_for_write", lambda *a, **kw: opened.append(1) or real(*a, **kw))
        for pk in (1, 2, 3):
            enqueue(PROVISION, pk)
        assert broker.queued() == [[1], [2], [3]]
        assert len(opened) <= 1  # none when an earlier test of this process left one open

    def test_a_broker_that_dropped_the_connection_loses_nothing(self, broker):
        enqueue(PROVISION, 1)  # the process now holds a connection to the broker
        ours = broker.client_info()["id"]
        for client in broker.client_list():  # as a broker restart would: every connection to this database
            if int(client["db"]) == broker.connection_pool.connection_kwargs.get("db", 0) and client["id"] != ours:
                broker.client_kill_filter(_id=client["id"])
        enqueue(PROVISION, 2)  # sent on a new connection, or left for the relay
        outbox._broker_down_until = 0.0
        enqueue(PROVISION, 3)
        outbox_relay()
        assert unsent() == []
        assert sorted(broker.queued()) == [[1], [2], [3]]


@pytest.mark.django_db(transaction=True)
class TestRelay:
    def test_sends_what_waits_oldest_first_once_the_broker_is_back(self, broker, broker_down, monkeypatch):
        for pk in (1, 2, 3):
            enqueue(PROVISION, pk)
        assert outbox_relay() == 0  # still down: tried, nothing lost
        assert len(unsent()) == 3
        monkeypatch.setattr(app.conf, "broker_url", django_settings.CELERY_BROKER_URL)
        assert outbox_relay() == 3
        assert unsent() == []
        assert broker.queued() == [[1], [2], [3]]
        assert outbox_relay() == 0
        assert broker.queued() == [[1], [2], [3]]  # nothing twice

    def test_skips_a_message_another_sender_holds(self, broker, broker_down, monkeypatch):
        enqueue(PROVISION, 1)
        enqueue(PROVISION, 2)
        monkeypatch.setattr(app.conf, "broker_url", django_settings.CELERY_BROKER_URL)
        held, release = threading.Event(), threading.Event()

        def hold_the_first():
            with transaction.atomic():
                list(OutboxMessage.objects.select_for_update().filter(args=[1]))
                held.set()
                release.wait(10)
            connection.close()

        other = threading.Thread(target=hold_the_first)
        other.start()
        held.wait(10)
        try:
            assert outbox_relay() == 1  # the second; the first is someone else's to send
        finally:
            release.set()
            other.join()
        assert unsent() == [(PROVISION, [1])]
        assert broker.queued() == [[2]]

    def test_a_message_for_an_unknown_task_is_given_up_without_blocking_the_next(self, broker):
        with transaction.atomic():
            OutboxMessage.objects.create(task_name="nowhere.tasks.nothing", args=[1])
            OutboxMessage.objects.create(task_name=PROVISION, args=[2])
        assert outbox_relay() == 1
        assert unsent() == []
        assert OutboxMessage.objects.get(task_name="nowhere.tasks.nothing").last_error == "No such task."
        assert broker.queued() == [[2]]

    def test_every_worker_runs_the_relay(self, celery_worker, account):
        vpc = VpcFactory(account=account)
        resource = ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.PENDING)
        OutboxMessage.objects.create(task_name=PROVISION, args=[resource.pk])  # as a failed fast path left it
        deadline = time.monotonic() + 20
        while Resource.objects.get(pk=resource.pk).status != ResourceStatus.ACTIVE:
            assert time.monotonic() < deadline, "the worker's relay did not send the message"
            time.sleep(0.1)
        assert unsent() == []


@pytest.mark.django_db
def test_purge_deletes_only_messages_sent_long_ago(settings):
    settings.ELBIA_OUTBOX_RETENTION = 3600
    now = timezone.now()
    old = OutboxMessage.objects.create(task_name=PROVISION, sent_at=now - timedelta(hours=2))
    recent = OutboxMessage.objects.create(task_name=PROVISION, sent_at=now - timedelta(minutes=5))
    waiting = OutboxMessage.objects.create(task_name=PROVISION, created_at=now - timedelta(days=3))
    assert outbox_purge_sent() == 1
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {recent.pk, waiting.pk}
    assert not OutboxMessage.objects.filter(pk=old.pk).exists()


FRESH_PROCESS = """
import django
django.setup()
from elbia.celery import app
assert "resources.tasks.provision_resource" not in app.tasks  # nothing imported the task modules yet
from elbia.outbox import _task
assert _task("resources.tasks.provision_resource") is not None
print("found")
"""


def test_a_web_process_finds_the_tasks_it_queues_by_name():
    """A web worker never imports the apps' task modules; the outbox loads them as a worker does at start."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "elbia.settings", "ELBIA_TESTING": "1"}
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS], cwd=BASE_DIR, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "found"
