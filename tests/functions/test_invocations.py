"""POST /v1/functions/{id}/invocations and its reads: real executions on the local runtime, metered.

Every test that invokes runs the handler for real in a runner process (``manage.py run_runtime``), as
``make run`` does; queued invocations run on a real Celery worker.
"""

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import UsageEvent
from billing.money import line_amount_cents
from billing.periods import current_month, next_month
from billing.pricing import MB_MS_PER_GB_SECOND, REQUESTS_PER_PRICE_UNIT
from billing.services import invoice_generate_for_month
from functions.code import code_store
from functions.invocations import invocations_purge_expired
from functions.models import Function, FunctionStatus, Invocation, InvocationStatus
from functions.starters import starter_archive
from tests.factories import PriceFactory
from tests.functions.code_archives import zip_of
from tests.functions.factories import FunctionFactory

pytestmark = pytest.mark.slow

PYTHON, NODE = "Python 3.11", "Node.js 20"
QUERIES_PER_LIST = 2  # the function, the page
LOCAL_MEMORY_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def deployed(account, source: str, *, runtime: str = PYTHON, **config):
    """An active function of ``account`` whose handler file holds ``source``."""
    handler, path = ("app.handler", "app.py") if runtime == PYTHON else ("index.handler", "index.mjs")
    sha256, size = code_store(zip_of({path: source}))
    return FunctionFactory(
        account=account, runtime=runtime, handler=handler, code_sha256=sha256, code_size=size, **config
    )


def invoke(api, function, event=None, *, raw: bytes | None = None, **headers):
    body = raw if raw is not None else json.dumps({} if event is None else event)
    return api.post(f"/v1/functions/{function.public_id}/invocations", body, content_type="application/json", **headers)


def url(function, invocation_id: str = "") -> str:
    return f"/v1/functions/{function.public_id}/invocations" + (f"/{invocation_id}" if invocation_id else "")


ECHO = {
    PYTHON: "def handler(event, context):\n    print('hello from', context.function_name)\n"
    "    return {'got': event, 'request_id': context.aws_request_id}\n",
    NODE: "export const handler = async (event, context) => {\n  console.log('hello from', context.functionName);\n"
    "  return { got: event, request_id: context.awsRequestId };\n};\n",
}
RAISES = {
    PYTHON: "def handler(event, context):\n    raise ValueError('bad ' + str(event['n']))\n",
    NODE: "export const handler = async (event) => { throw new TypeError('bad ' + event.n); };\n",
}


@pytest.mark.django_db
@pytest.mark.parametrize("runtime", [PYTHON, NODE])
def test_a_handler_returns_its_value_with_the_run_in_the_headers(api, account, runner_port, runtime):
    function = deployed(account, ECHO[runtime], runtime=runtime)
    first = invoke(api, function, {"n": 1, "name": "ünï"})
    second = invoke(api, function, [1, 2])

    assert first.status_code == 200, first.content
    assert first["Content-Type"] == "application/json; charset=utf-8"
    invocation_id = first["X-Elbia-Invocation-Id"]
    assert invocation_id.startswith("EXEC_") and len(invocation_id) == 15
    assert first.json() == {"got": {"n": 1, "name": "ünï"}, "request_id": invocation_id}
    assert second.json()["got"] == [1, 2]
    assert "X-Elbia-Function-Error" not in first
    duration, billed = float(first["X-Elbia-Duration-Ms"]), int(first["X-Elbia-Billed-Duration-Ms"])
    assert 0 < duration <= billed < duration + 1
    assert f"hello from {function.name}" in base64.b64decode(first["X-Elbia-Log-Result"]).decode()
    assert (first["X-Elbia-Cold-Start"], second["X-Elbia-Cold-Start"]) == ("true", "false")
    assert float(first["X-Elbia-Init-Duration-Ms"]) > 0 and "X-Elbia-Init-Duration-Ms" not in second

    stored = Invocation.objects.get(public_id=invocation_id)
    assert (stored.status, stored.result, stored.billed_duration_ms) == ("succeeded", first.json(), billed)
    function.refresh_from_db()
    assert function.last_executed == Invocation.objects.get(public_id=second["X-Elbia-Invocation-Id"]).started_at


@pytest.mark.django_db
@pytest.mark.parametrize("runtime", [PYTHON, NODE])
def test_a_handler_that_raises_is_an_unhandled_function_error(api, account, runner_port, runtime):
    function = deployed(account, RAISES[runtime], runtime=runtime)
    answer = invoke(api, function, {"n": 7})
    assert answer.status_code == 200
    assert answer["X-Elbia-Function-Error"] == "Unhandled"
    error = answer.json()
    assert set(error) == {"errorType", "errorMessage", "trace"}
    assert (error["errorType"], error["errorMessage"]) == (
        ("ValueError", "bad 7") if runtime == PYTHON else ("TypeError", "bad 7")
    )
    assert error["trace"]
    assert Invocation.objects.get(public_id=answer["X-Elbia-Invocation-Id"]).status == "failed"
    assert UsageEvent.objects.filter(event_id=answer["X-Elbia-Invocation-Id"]).exists()  # a failed run is billed


@pytest.mark.django_db
def test_a_handler_past_its_timeout_is_a_timeout_error(api, account, runner_port):
    function = deployed(account, "import time\ndef handler(event, context):\n    time.sleep(30)\n", timeout_s=1)
    started = time.monotonic()
    answer = invoke(api, function)
    assert time.monotonic() - started < 10
    assert answer.status_code == 200
    assert answer["X-Elbia-Function-Error"] == "Unhandled"
    assert answer.json()["errorType"] == "Timeout"
    assert answer.json()["errorMessage"] == "Task timed out after 1.00 seconds"
    assert int(answer["X-Elbia-Billed-Duration-Ms"]) >= 1000


@pytest.mark.django_db
def test_a_handler_returning_nothing_answers_null(api, account, runner_port):
    function = deployed(account, "def handler(event, context):\n    pass\n")
    answer = invoke(api, function)
    assert answer.status_code == 200
    assert answer.content == b"null"


@pytest.mark.django_db
@pytest.mark.parametrize("runtime", [PYTHON, NODE])
def test_the_starter_function_answers(api, account, runner_port, runtime):
    handler = "lambda_function.lambda_handler" if runtime == PYTHON else "index.handler"
    sha256, size = code_store(starter_archive(runtime, handler))
    function = FunctionFactory(account=account, runtime=runtime, handler=handler, code_sha256=sha256, code_size=size)
    answer = invoke(api, function, {"name": "Ada"})
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"message": f"Hello from {function.name}", "event": {"name": "Ada"}}


@pytest.mark.django_db
class TestRefusals:
    """What is refused, before anything runs (no runner needed: nothing reaches it)."""

    @pytest.mark.parametrize("status", [FunctionStatus.DEPLOYING, FunctionStatus.DEPRECATED, FunctionStatus.FAILED])
    def test_a_function_that_is_not_active(self, api, account, status):
        function = deployed(account, ECHO[PYTHON], status=status)
        answer = invoke(api, function)
        assert answer.status_code == 409
        error = answer.json()["error"]
        assert error["code"] == "conflict"
        assert error["message"] == f"Function {function.public_id} is {status}: only an active function can be invoked."
        assert not Invocation.objects.exists()

    def test_a_runtime_that_runs_only_on_aws(self, api, account):
        function = FunctionFactory(account=account, runtime="Java 21", handler="example.Handler::handleRequest")
        answer = invoke(api, function)
        assert answer.status_code == 409
        assert answer.json()["error"]["message"].startswith(
            "Java 21 functions run only on the AWS provider (ELBIA_PROVIDER=aws)"
        )

    def test_without_the_invoke_scope(self, make_client, user, account):
        function = deployed(account, ECHO[PYTHON])
        client = make_client(user, scopes=["functions:read", "functions:write"])
        answer = invoke(client, function)
        assert answer.status_code == 403
        assert answer.json()["error"]["details"] == {"required_scope": "functions:invoke"}
        assert client.get(url(function)).status_code == 403

    def test_another_accounts_function_is_not_found(self, api, other_user):
        foreign = deployed(other_user.account, ECHO[PYTHON])
        answer = invoke(api, foreign)
        assert answer.status_code == 404
        assert answer.json()["error"]["message"] == "Resource not available"
        assert api.get(url(foreign)).status_code == 404
        assert not Invocation.objects.exists()

    @pytest.mark.parametrize("function_id", ["FUNC_123", "RES_0123456789", "nope"])
    def test_a_malformed_function_id_is_not_found(self, api, function_id):
        for answer in (
            api.post(f"/v1/functions/{function_id}/invocations", "{}", content_type="application/json"),
            api.get(f"/v1/functions/{function_id}/invocations"),
            api.get(f"/v1/functions/{function_id}/invocations/EXEC_0123456789"),
        ):
            assert answer.status_code == 404

    def test_a_body_that_is_not_json(self, api, account):
        function = deployed(account, ECHO[PYTHON])
        for answer in (
            invoke(api, function, raw=b"{not json"),
            api.post(url(function), "event=1", content_type="application/x-www-form-urlencoded"),
        ):
            assert answer.status_code == 400
            assert answer.json()["error"]["message"] == "Invalid JSON in request body"

    def test_an_unknown_invocation_type(self, api, account):
        function = deployed(account, ECHO[PYTHON])
        answer = invoke(api, function, HTTP_X_ELBIA_INVOCATION_TYPE="DryRun")
        assert answer.status_code == 400
        assert "X-Elbia-Invocation-Type" in json.dumps(answer.json())

    def test_an_event_over_6_mb(self, api, account):
        function = deployed(account, ECHO[PYTHON])
        answer = invoke(api, function, raw=json.dumps("x" * (6 * 1024 * 1024)).encode())
        assert answer.status_code == 413
        assert answer.json()["error"]["code"] == "payload_too_large"
        message = answer.json()["error"]["message"]
        assert message == "Request body is too large: at most 6,291,456 bytes are accepted here."
        assert not Invocation.objects.exists()

    def test_a_content_length_that_is_no_number_is_read_as_no_body_not_a_500(self, api, account):
        function = deployed(account, ECHO[PYTHON])
        Function.objects.filter(pk=function.pk).update(status=FunctionStatus.DEPLOYING)
        answer = invoke(api, function, raw=b"{}", CONTENT_LENGTH="many")
        assert answer.status_code == 409, answer.content  # past the body: the function's own refusal

    def test_a_runner_that_does_not_answer_is_a_503_leaving_nothing(self, api, account, settings):
        import socket

        with socket.create_server(("127.0.0.1", 0)) as taken:
            settings.ELBIA_RUNNER_PORT = taken.getsockname()[1]
        function = deployed(account, ECHO[PYTHON])
        answer = invoke(api, function)
        assert answer.status_code == 503
        assert "not reachable" in answer.json()["error"]["message"]
        assert not Invocation.objects.exists() and not UsageEvent.objects.exists()


@pytest.mark.django_db
def test_an_event_of_5_mb_is_delivered(api, account, runner_port):
    function = deployed(account, "def handler(event, context):\n    return len(event)\n")
    answer = invoke(api, function, "x" * (5 * 1024 * 1024))
    assert answer.status_code == 200, answer.content
    assert answer.json() == 5 * 1024 * 1024


@pytest.mark.django_db
def test_an_idempotent_retry_replays_the_invocation_without_running_it_again(api, account, runner_port):
    function = deployed(account, ECHO[PYTHON])
    first = invoke(api, function, {"n": 1}, HTTP_IDEMPOTENCY_KEY="order-42")
    again = invoke(api, function, {"n": 1}, HTTP_IDEMPOTENCY_KEY="order-42")
    other = invoke(api, function, {"n": 2}, HTTP_IDEMPOTENCY_KEY="order-42")
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    for header in ("X-Elbia-Invocation-Id", "X-Elbia-Duration-Ms", "X-Elbia-Log-Result", "X-Elbia-Cold-Start"):
        assert again[header] == first[header]
    assert other.status_code == 422
    assert Invocation.objects.count() == UsageEvent.objects.count() == 1


@pytest.mark.django_db
def test_invocations_are_read_back_newest_first(api, account, runner_port):
    function = deployed(account, RAISES[PYTHON])
    ids = [invoke(api, function, {"n": n})["X-Elbia-Invocation-Id"] for n in range(3)]
    listed = api.get(url(function))
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()] == ids[::-1]
    one = api.get(url(function, ids[0]))
    assert one.status_code == 200
    body = one.json()
    assert body["id"] == ids[0] and body["function"] == function.public_id
    assert (body["type"], body["status"], body["result"]) == ("RequestResponse", "failed", None)
    assert body["error"]["errorMessage"] == "bad 0"
    assert body["billed_duration_ms"] >= 1 and body["memory_mb"] == function.memory_mb
    assert body["created_at"].endswith("Z") and body["finished_at"].endswith("Z")
    assert api.get(url(function) + "?status=succeeded").json() == []
    assert api.get(url(function) + "?status=bogus").status_code == 400
    assert api.get(url(function, "EXEC_0000000000")).status_code == 404
    other = deployed(account, ECHO[PYTHON])
    assert api.get(url(other, ids[0])).status_code == 404  # an invocation of another function


@pytest.mark.django_db
def test_the_list_costs_the_same_queries_for_any_page_size(api, account):
    function = FunctionFactory(account=account)
    Invocation.objects.bulk_create(
        Invocation(
            account=account, function=function, invocation_type="RequestResponse", status="succeeded",
            memory_mb=128, public_id=f"EXEC_{n:010d}", result={"n": n},
        )
        for n in range(30)
    )  # fmt: skip
    api.get(url(function))  # the token's lookup is cached from then on
    counts = []
    for limit in (1, 25, 200):
        with CaptureQueriesContext(connection) as captured:
            assert len(api.get(url(function) + f"?limit={limit}").json()) == min(limit, 30)
        counts.append(len(captured.captured_queries))
    assert counts == [QUERIES_PER_LIST] * 3


@pytest.mark.django_db
def test_usage_and_the_invoice_count_every_invocation(api, account, runner_port):
    month = current_month()
    PriceFactory(kind="request", instance_type="", unit_price=Decimal("10000"), effective_from=date(2024, 1, 1))
    PriceFactory(kind="gb_second", instance_type="", unit_price=Decimal("7.5"), effective_from=date(2024, 1, 1))
    function = deployed(account, "import time\ndef handler(event, context):\n    time.sleep(event['s'])\n",
                        memory_mb=512)  # fmt: skip
    answers = [invoke(api, function, {"s": seconds}) for seconds in (0, 0.05, 0.12, 0.01, 0)]
    billed = [int(answer["X-Elbia-Billed-Duration-Ms"]) for answer in answers]
    assert all(answer.status_code == 200 for answer in answers)

    usage = api.get("/v1/usage").json()
    assert usage["total_executions"] == 5
    requests = line_amount_cents(5, Decimal("10000"), per=REQUESTS_PER_PRICE_UNIT)
    compute = line_amount_cents(sum(billed) * 512, Decimal("7.5"), per=MB_MS_PER_GB_SECOND)
    assert usage["cost_cents"] == requests + compute

    invoice = invoice_generate_for_month(account=account, month=month, now=timezone.now() + timedelta(days=32))
    assert invoice.amount_cents == requests + compute
    assert next_month(month) > month


@pytest.mark.django_db(transaction=True)
def test_a_burst_runs_exactly_the_concurrency_limit(make_client, user, account, runner_port, settings):
    settings.ELBIA_FUNCTION_CONCURRENCY = 3
    function = deployed(account, "import time\ndef handler(event, context):\n    time.sleep(1.5)\n    return 1\n")
    token = make_client(user).issued.access_token

    def call(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            return invoke(client, function)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=7) as pool:
        answers = list(pool.map(call, range(7)))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 3 + [429] * 4
    refused = [answer for answer in answers if answer.status_code == 429]
    assert all(answer.json()["error"]["message"] == "Rate limit exceeded" for answer in refused)
    assert all(answer["Retry-After"] == "1" for answer in refused)
    # The slots are given back: the next call runs.
    assert invoke(make_client(user), function).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_account_limit_holds_across_functions_without_redis(make_client, user, account, runner_port, settings):
    settings.ELBIA_ACCOUNT_CONCURRENCY = 2
    source = "import time\ndef handler(event, context):\n    time.sleep(1.5)\n    return 1\n"
    functions = [deployed(account, source) for _ in range(4)]
    token = make_client(user).issued.access_token

    def call(function):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        try:
            return invoke(client, function)
        finally:
            connection.close()

    with override_settings(CACHES=LOCAL_MEMORY_CACHE), ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(call, functions))
    assert sorted(answer.status_code for answer in answers) == [200, 200, 429, 429]
    assert not Invocation.objects.filter(status=InvocationStatus.RUNNING).exists()


@pytest.mark.django_db
def test_a_slot_left_by_a_dead_caller_frees_itself(account, settings):
    """A lease expires: a web worker killed mid-run holds its slot only until then."""
    from django_redis import get_redis_connection

    from functions import concurrency

    settings.ELBIA_FUNCTION_CONCURRENCY = 1
    function = FunctionFactory(account=account, timeout_s=1)
    assert concurrency.acquire(function, "dead-caller")
    with pytest.raises(concurrency.LimitReached):
        concurrency.acquire(function, "next")
    redis = get_redis_connection("default")
    for key in concurrency._keys(function):  # the lease's end, moved to now
        redis.zadd(key, {"dead-caller": 0})
    assert concurrency.acquire(function, "next")
    concurrency.release(function, "next")


@pytest.mark.django_db
def test_old_invocations_are_purged_after_7_days(account):
    function = FunctionFactory(account=account)
    now = timezone.now()
    for public_id, age in (("EXEC_0000000001", timedelta(days=8)), ("EXEC_0000000002", timedelta(days=6))):
        Invocation.objects.create(
            account=account, function=function, invocation_type="Event", status="succeeded", memory_mb=128,
            public_id=public_id, created_at=now - age,
        )  # fmt: skip
    assert invocations_purge_expired(now=now) == 1
    assert list(Invocation.objects.values_list("public_id", flat=True)) == ["EXEC_0000000002"]


@pytest.mark.django_db
def test_a_synchronous_invocation_whose_request_died_is_ended_as_lost(account):
    function = FunctionFactory(account=account)
    now = timezone.now()
    lost, alive = (
        Invocation.objects.create(
            account=account, function=function, invocation_type="RequestResponse", status="running", memory_mb=128,
            started_at=now - timedelta(minutes=5), lease_expires_at=lease,
        )
        for lease in (now - timedelta(seconds=1), now + timedelta(seconds=30))
    )  # fmt: skip
    invocations_purge_expired(now=now)
    lost.refresh_from_db()
    alive.refresh_from_db()
    assert (lost.status, lost.error["errorType"], lost.finished_at) == ("failed", "Invocation.Lost", now)
    assert alive.status == "running"
    assert not UsageEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_queued_invocation_runs_on_a_worker(make_client, user, account, runner_port, celery_worker):
    function = deployed(account, ECHO[PYTHON])
    api = make_client(user)
    answer = invoke(api, function, {"queued": True}, HTTP_X_ELBIA_INVOCATION_TYPE="Event")
    assert answer.status_code == 202
    invocation_id = answer.json()["id"]
    assert answer.json() == {"id": invocation_id, "status": "queued"}
    assert answer["X-Elbia-Invocation-Id"] == invocation_id

    deadline = time.monotonic() + 30
    while (body := api.get(url(function, invocation_id)).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
    assert body["status"] == "succeeded"
    assert body["type"] == "Event"
    assert body["result"] == {"got": {"queued": True}, "request_id": invocation_id}
    assert "hello from" in body["logs"]
    assert UsageEvent.objects.filter(event_id=invocation_id, duration_ms=body["billed_duration_ms"]).count() == 1
    assert Invocation.objects.get(public_id=invocation_id).event is None


@pytest.mark.django_db
class TestQueuedInvocationsWithoutAWorker:
    """The task's body (``invocation_run_queued``) where no run happens: nothing is metered."""

    def queued(self, account, **config):
        from functions.invocations import invocation_queue

        function = deployed(account, ECHO[PYTHON], **config)
        return function, invocation_queue(account=account, function=function, event=b'{"n": 1}')

    def test_a_function_no_longer_active_fails_it(self, account):
        from functions.invocations import invocation_run_queued

        function, invocation = self.queued(account)
        function.status = FunctionStatus.DEPRECATED
        function.save()
        done = invocation_run_queued(invocation_id=invocation.pk)
        assert done.status == "failed"
        assert done.error["errorType"] == "Function.NotActive"
        assert done.event is None and not UsageEvent.objects.exists()

    def test_a_runner_that_does_not_answer_leaves_it_queued(self, account, settings):
        import socket

        from elbia.errors import Unavailable
        from functions.invocations import invocation_fail_by_id, invocation_run_queued

        with socket.create_server(("127.0.0.1", 0)) as taken:
            settings.ELBIA_RUNNER_PORT = taken.getsockname()[1]
        _, invocation = self.queued(account)
        with pytest.raises(Unavailable):
            invocation_run_queued(invocation_id=invocation.pk)
        invocation.refresh_from_db()
        assert (invocation.status, invocation.lease_expires_at, bytes(invocation.event)) == (
            "queued",
            None,
            b'{"n": 1}',
        )
        # After its retries the task gives up: failed, unmetered.
        failed = invocation_fail_by_id(invocation_id=invocation.pk, error_type="Runtime.Unavailable", message="down")
        assert failed.status == "failed" and not UsageEvent.objects.exists()

    def test_over_the_limit_it_stays_queued(self, account, settings):
        from elbia.errors import LimitReached
        from functions import concurrency
        from functions.invocations import invocation_run_queued

        settings.ELBIA_FUNCTION_CONCURRENCY = 1
        function, invocation = self.queued(account)
        assert concurrency.acquire(function, "someone-else")
        try:
            with pytest.raises(LimitReached):
                invocation_run_queued(invocation_id=invocation.pk)
        finally:
            concurrency.release(function, "someone-else")
        invocation.refresh_from_db()
        assert invocation.status == "queued"

    def test_a_finished_one_is_not_run_again(self, account):
        from functions.invocations import invocation_run_queued

        _, invocation = self.queued(account)
        Invocation.objects.filter(pk=invocation.pk).update(status="succeeded")
        assert invocation_run_queued(invocation_id=invocation.pk) is None


def test_the_purge_runs_on_the_beat_schedule(settings):
    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "functions.tasks.purge_expired_invocations" in schedule
    assert settings.CELERY_TASK_ROUTES["functions.tasks.run_invocation"] == {"queue": "invocations"}


@pytest.mark.django_db
def test_a_429_is_not_kept_under_the_idempotency_key(api, account, runner_port, settings):
    from functions import concurrency

    settings.ELBIA_FUNCTION_CONCURRENCY = 1
    function = deployed(account, ECHO[PYTHON])
    assert concurrency.acquire(function, "a-long-run")
    refused = invoke(api, function, {"n": 1}, HTTP_IDEMPOTENCY_KEY="retry-me")
    concurrency.release(function, "a-long-run")
    retried = invoke(api, function, {"n": 1}, HTTP_IDEMPOTENCY_KEY="retry-me")
    assert (refused.status_code, refused["Retry-After"]) == (429, "1")
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried
    assert retried.json()["got"] == {"n": 1}
