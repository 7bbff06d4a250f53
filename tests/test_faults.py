"""Fault injection: real outages of the broker, the database and Redis, and a worker killed mid-work.

Each test starts what it needs on free loopback ports, on the test database: gunicorn (the Procfile's
server), Celery workers and beat as subprocesses, and a ``FaultProxy`` (tests/faults/proxy.py) in front
of PostgreSQL or Redis, which it cuts (``down``), freezes (``hang``: connections accepted, never
answered) and restores. No service of the machine is stopped.

Answer times are printed (``-s`` shows them) and asserted generously: a hung dependency must cost a
request seconds, not the 30 s of gunicorn's worker timeout.
"""

import http.client
import os
import re
import signal
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from django.conf import settings
from django.db import connection

from elbia.celery import app
from elbia.models import OutboxMessage
from resources.models import Resource
from resources.services import resource_create
from tests.factories import UserFactory
from tests.faults.proxy import FaultProxy
from tests.resources.factories import VpcFactory
from tests.servers import REQUEST_TIMEOUT, call, celery, database_url, gunicorn, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

#: A hung dependency must be answered for well within this (the timeouts default to about 2 s).
HUNG_ANSWER_WITHIN = 5.0
WRITE_SCOPES = ["resources:read", "resources:write"]
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's


def redis_target() -> tuple[int, str]:
    """The port of the tests' Redis and its database path (``/4``)."""
    url = urlsplit(settings.REDIS_URL)
    return url.port or 6379, url.path or "/0"


def redis_url_through(proxy: FaultProxy) -> str:
    return f"redis://127.0.0.1:{proxy.port}{redis_target()[1]}"


def database_port() -> int:
    return int(connection.settings_dict["PORT"] or 5432)


def timed(function, *args, **kwargs):
    """``(seconds, result)`` of one call."""
    start = time.monotonic()
    result = function(*args, **kwargs)
    return time.monotonic() - start, result


def statuses(*public_ids: str) -> list[str]:
    found = dict(Resource.objects.filter(public_id__in=public_ids).values_list("public_id", "status"))
    return [found.get(public_id) for public_id in public_ids]


def assert_unavailable(answer, seconds: float) -> None:
    status, headers, body = answer
    assert status == 503, body
    assert headers["content-type"].startswith("application/json")
    assert body["error"]["code"] == "unavailable"
    assert int(headers["retry-after"]) >= 1
    assert seconds < HUNG_ANSWER_WITHIN, seconds


@pytest.fixture(autouse=True)
def _empty_queue():
    """Messages left on the tests' queue by earlier tests point at rows that no longer exist."""
    app.control.purge()


@pytest.fixture
def writer(issue_token):
    user = UserFactory()
    return user, issue_token(user, scopes=WRITE_SCOPES).access_token


def test_writes_succeed_while_the_broker_is_down_and_the_work_is_done_when_it_is_back(tmp_path, writer):
    user, token = writer
    redis_port, _ = redis_target()
    body = {"region": "us-east-1", "instance_type": "t2.micro", "vpc": "default"}
    with (
        FaultProxy(redis_port) as redis,
        gunicorn(tmp_path / "gunicorn.log", REDIS_URL=redis_url_through(redis)) as (port, _),
        celery("worker", tmp_path / "worker.log", REDIS_URL=redis_url_through(redis), ELBIA_PROVISION_DELAY="0"),
    ):
        status, _, first = call(port, "POST", "/v1/resources", token, {**body, "name": "before"})
        assert status == 201
        wait_for(lambda: statuses(first["id"]) == ["active"], 60, message="the worker never provisioned")

        redis.down()
        answers = {
            "keyed": call(port, "POST", "/v1/resources", token, {**body, "name": "keyed"}, {"Idempotency-Key": "k-1"}),
            "retry": call(port, "POST", "/v1/resources", token, {**body, "name": "keyed"}, {"Idempotency-Key": "k-1"}),
            "plain": call(port, "POST", "/v1/resources", token, {**body, "name": "plain"}),
            "delete": call(port, "DELETE", f"/v1/resources/{first['id']}", token),
            "delete-again": call(port, "DELETE", f"/v1/resources/{first['id']}", token),
        }
        print({name: answer[0] for name, answer in answers.items()})
        assert [answers[name][0] for name in ("keyed", "retry", "plain", "delete")] == [201, 201, 201, 202]
        assert answers["retry"][1]["idempotent-replayed"] == "true"
        assert answers["retry"][2] == answers["keyed"][2]
        assert answers["delete-again"][0] == 409  # already deleting: the first DELETE's answer was the real one
        keyed, plain = answers["keyed"][2]["id"], answers["plain"][2]["id"]
        assert Resource.objects.filter(account=user.account, name="keyed").count() == 1
        assert Resource.objects.filter(account=user.account, name="plain").count() == 1
        assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 3  # two provisionings, one deletion
        time.sleep(2)
        assert statuses(keyed, plain, first["id"]) == ["pending", "pending", "deleting"]  # nothing was sent

        redis.restore()
        start = time.monotonic()
        wait_for(
            lambda: statuses(keyed, plain, first["id"]) == ["active", "active", "deleted"],
            60,
            message="the queued work was not done once the broker came back",
        )
        print(f"work done {time.monotonic() - start:.1f} s after the broker came back")
        replay = call(port, "POST", "/v1/resources", token, {**body, "name": "keyed"}, {"Idempotency-Key": "k-1"})
        assert (replay[0], replay[2]) == (201, answers["keyed"][2])
    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
    assert Resource.objects.filter(account=user.account, type="compute").count() == 3


def test_a_hung_database_is_a_quick_json_503(tmp_path, writer):
    _, token = writer
    with (
        FaultProxy(database_port()) as database,
        gunicorn(tmp_path / "gunicorn.log", DATABASE_URL=database_url(database.port)) as (port, _),
    ):
        assert call(port, "GET", "/v1/regions", token)[0] == 200  # the workers hold open connections now
        database.hang()
        timings = {}
        # A catalog read with a token validated seconds ago needs no database (the token cache): served.
        assert call(port, "GET", "/v1/regions", token)[0] == 200
        for name, method, path in [
            ("GET /v1/resources", "GET", "/v1/resources"),
            ("POST /v1/resources", "POST", "/v1/resources"),
        ]:
            # A valid body: an invalid one is refused before any database work (the token is cached).
            body = {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default"} if method == "POST" else None
            seconds, answer = timed(call, port, method, path, token, body)
            timings[name] = round(seconds, 2)
            assert_unavailable(answer, seconds)
        seconds, (status, _, body) = timed(call, port, "GET", "/readyz")
        timings["GET /readyz"] = round(seconds, 2)
        assert (status, body["failing"]) == (503, ["database"])
        assert seconds < HUNG_ANSWER_WITHIN
        print("answers with the database hung:", timings)

        database.restore()
        assert wait_for(lambda: call(port, "GET", "/v1/regions", token)[0] == 200, 30)


def sign_in(port: int, username: str, password: str) -> tuple[int, str]:
    """Sign in to the dashboard as a browser would (the form's CSRF token and cookie); (status, Location)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    conn.request("GET", "/login/")
    page = conn.getresponse()
    html = page.read().decode()
    cookie = SimpleCookie(page.getheader("Set-Cookie"))["csrftoken"].value
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    form = urlencode({"username": username, "password": password, "csrfmiddlewaretoken": form_token})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie}"}
    conn.request("POST", "/login/", body=form, headers=headers)
    answer = conn.getresponse()
    answer.read()
    conn.close()
    return answer.status, answer.getheader("Location", "")


def test_hung_redis_leaves_the_api_and_the_dashboard_working(tmp_path, writer):
    user, token = writer
    redis_port, _ = redis_target()
    with (
        FaultProxy(redis_port) as redis,
        gunicorn(tmp_path / "gunicorn.log", REDIS_URL=redis_url_through(redis)) as (port, log_path),
    ):
        assert call(port, "GET", "/v1/regions", token)[0] == 200
        redis.hang()
        timings = {}
        seconds, (status, headers, _) = timed(call, port, "GET", "/v1/regions", token)
        timings["GET /v1/regions"] = round(seconds, 2)
        assert status == 200 and seconds < HUNG_ANSWER_WITHIN  # rate limits count per process meanwhile
        assert headers["x-ratelimit-limit"] == "5000"
        body = {"region": "us-east-1", "instance_type": "t2.micro", "vpc": "default", "name": "while-hung"}
        seconds, (status, _, created) = timed(call, port, "POST", "/v1/resources", token, body)
        timings["POST /v1/resources"] = round(seconds, 2)
        assert status == 201 and seconds < HUNG_ANSWER_WITHIN
        pending = Resource.objects.get(public_id=created["id"])
        assert OutboxMessage.objects.filter(sent_at__isnull=True, args=[pending.pk]).exists()  # sent later
        seconds, (status, _, ready) = timed(call, port, "GET", "/readyz")
        timings["GET /readyz"] = round(seconds, 2)
        assert (status, ready["failing"]) == (503, ["cache", "broker"])
        assert seconds < 2 * HUNG_ANSWER_WITHIN
        seconds, (status, location) = timed(sign_in, port, user.username, PASSWORD)
        timings["sign-in (GET and POST /login/)"] = round(seconds, 2)
        assert (status, location) == (302, "/")  # its attempt counters live in this process meanwhile
        assert seconds < 2 * HUNG_ANSWER_WITHIN
        print("answers with Redis hung:", timings)
        log = log_path.read_text(errors="replace")
    assert "Traceback" not in log


def test_a_killed_worker_is_recovered_within_a_minute_and_nothing_runs_twice(tmp_path):
    user = UserFactory()
    vpc = VpcFactory(account=user.account, name="main")
    provider_log = tmp_path / "provider.log"
    provider_log.touch()
    env = {
        "ELBIA_PROVIDER": "tests.faults.provider.CountingProvider",
        "ELBIA_TEST_PROVIDER_LOG": str(provider_log),
        "ELBIA_PROVISION_DELAY": "2",
    }
    with celery("beat", tmp_path / "beat.log", "--schedule", str(tmp_path / "beat-schedule"), **env):
        with celery("worker", tmp_path / "worker-1.log", **env) as first:
            ids = [
                resource_create(account=user.account, region="us-east-1", instance_type="t2.micro", vpc=vpc).public_id
                for _ in range(16)
            ]
            wait_for(
                lambda: statuses(*ids).count("provisioning") == 2 and statuses(*ids).count("active") > 0,
                60,
                interval=0.05,
                message="the first worker never got going",
            )
            os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool, mid-step, as a lost machine
            killed_at = time.monotonic()
            orphans = [
                public_id for public_id, status in zip(ids, statuses(*ids), strict=True) if status == "provisioning"
            ]
            first.wait(timeout=10)
        with celery("worker", tmp_path / "worker-2.log", **env):
            wait_for(
                lambda: statuses(*ids) == ["active"] * 16,
                90,
                message=f"not every resource became active: {statuses(*ids)}",
            )
            recovered = time.monotonic() - killed_at
    print(f"every resource active {recovered:.1f} s after the worker was killed")
    assert recovered < 60
    finished = Path(provider_log).read_text().split("\n")
    assert sorted(line for line in finished if line) == sorted(f"provision {public_id}" for public_id in ids)
    # The dead worker's claims were handed over by the reaper (their heartbeat stopped), not by the broker's
    # visibility timeout (minutes): each was requeued once.
    logs = (tmp_path / "worker-2.log").read_text(errors="replace")
    assert sum(int(n) for n in re.findall(r"Reaper \(resources\): \{'requeued': (\d+)", logs)) == len(orphans) == 2
