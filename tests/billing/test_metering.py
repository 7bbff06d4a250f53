"""POST /v1/usage/events: batches of execution records, each event_id counted once per account, forever."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import Invoice, UsageEvent
from billing.periods import current_month, month_end, previous_month
from tests.factories import FunctionFactory

pytestmark = pytest.mark.django_db

URL = "/v1/usage/events"
# token lookup; savepoint, billing lock, functions, invoiced months, insert, 2 updates (in a savepoint), release
EXPECTED_QUERIES = 11


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(fn, n: int = 0, **fields) -> dict:
    body = {
        "event_id": f"evt-{n}",
        "function": fn.public_id,
        "timestamp": rfc3339(timezone.now() - timedelta(seconds=60 - n % 60)),
        "duration_ms": 100 + n,
    }
    body.update(fields)
    return body


def post(api, events):
    # json.dumps escapes what a renderer could not encode (a lone surrogate), as a real client's JSON may.
    return api.post(URL, data=json.dumps({"events": events}), content_type="application/json")


def error_details(response) -> dict:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"] == "Invalid JSON in request body"
    return error["details"]


class TestAcceptedBatches:
    def test_batch_is_stored_and_counted(self, api, account, function):
        response = post(api, [event(function, n) for n in range(3)])
        assert response.status_code == 200
        assert response.json() == {"accepted": 3, "duplicates": 0}
        rows = UsageEvent.objects.filter(account=account).order_by("event_id")
        assert [(row.event_id, row.duration_ms, row.memory_mb) for row in rows] == [
            ("evt-0", 100, 256),
            ("evt-1", 101, 256),
            ("evt-2", 102, 256),
        ]
        assert all(row.function_id == function.id for row in rows)

    def test_resent_batch_is_counted_once(self, api, account, function):
        batch = [event(function, n) for n in range(5)]
        assert post(api, batch).json() == {"accepted": 5, "duplicates": 0}
        assert post(api, batch).json() == {"accepted": 0, "duplicates": 5}
        assert UsageEvent.objects.filter(account=account).count() == 5

    def test_partly_resent_batch(self, api, account, function):
        post(api, [event(function, n) for n in range(3)])
        response = post(api, [event(function, n) for n in range(1, 5)])
        assert response.json() == {"accepted": 2, "duplicates": 2}
        assert UsageEvent.objects.filter(account=account).count() == 5

    def test_same_event_twice_in_a_batch_counts_once_and_the_first_wins(self, api, account, function):
        response = post(api, [event(function, 1, duration_ms=10), event(function, 1, duration_ms=99999)])
        assert response.json() == {"accepted": 1, "duplicates": 1}
        assert UsageEvent.objects.get(account=account).duration_ms == 10

    def test_event_ids_are_per_account(self, api, other_api, function, other_user):
        other_function = FunctionFactory(account=other_user.account, created_at=function.created_at)
        assert post(api, [event(function, 1)]).json() == {"accepted": 1, "duplicates": 0}
        assert post(other_api, [event(other_function, 1)]).json() == {"accepted": 1, "duplicates": 0}

    def test_memory_defaults_to_the_functions_and_can_be_given(self, api, account, function):
        post(api, [event(function, 1), event(function, 2, memory_mb=2048), event(function, 3, memory_mb=None)])
        memory = dict(UsageEvent.objects.filter(account=account).values_list("event_id", "memory_mb"))
        assert memory == {"evt-1": 256, "evt-2": 2048, "evt-3": 256}

    def test_timestamps_with_offsets_and_edges(self, api, account, function):
        now = timezone.now()
        local = (now - timedelta(hours=1)).astimezone(timezone.get_fixed_timezone(330))
        response = post(
            api,
            [
                event(function, 1, timestamp=local.isoformat(timespec="seconds")),
                event(function, 2, timestamp=rfc3339(now + timedelta(minutes=4))),  # within the clock skew
                event(function, 3, duration_ms=0),
                event(function, 4, duration_ms=900_000, memory_mb=10240, event_id="x" * 128),
            ],
        )
        assert response.json() == {"accepted": 4, "duplicates": 0}
        stored = UsageEvent.objects.get(account=account, event_id="evt-1").timestamp
        assert stored == local.replace(microsecond=0)

    def test_previous_month_is_accepted_until_invoiced(self, api, account, function):
        last_month = previous_month(current_month())
        late = datetime(last_month.year, last_month.month, month_end(last_month).day, 23, 59, 59, tzinfo=UTC)
        assert post(api, [event(function, 1, timestamp=rfc3339(late))]).json() == {"accepted": 1, "duplicates": 0}

    def test_last_executed_moves_forward_only(self, api, function):
        now = timezone.now()
        post(api, [event(function, 1, timestamp=rfc3339(now - timedelta(minutes=1)))])
        function.refresh_from_db()
        function.resource.refresh_from_db()
        assert function.last_executed == now - timedelta(minutes=1)
        assert function.resource.last_execution == function.last_executed

        post(api, [event(function, 2, timestamp=rfc3339(now - timedelta(minutes=30)))])
        newest = function.last_executed
        function.refresh_from_db()
        function.resource.refresh_from_db()
        assert function.last_executed == newest
        assert function.resource.last_execution == newest

    def test_several_functions_in_one_batch(self, api, account, function):
        second = FunctionFactory(account=account, created_at=function.created_at, memory_mb=1024)
        now = timezone.now()
        post(
            api,
            [
                event(function, 1, timestamp=rfc3339(now - timedelta(minutes=3))),
                event(second, 2, timestamp=rfc3339(now - timedelta(minutes=2))),
                event(function, 3, timestamp=rfc3339(now - timedelta(minutes=1))),
            ],
        )
        function.refresh_from_db()
        second.refresh_from_db()
        assert function.last_executed == now - timedelta(minutes=1)
        assert second.last_executed == now - timedelta(minutes=2)
        assert UsageEvent.objects.get(event_id="evt-2").memory_mb == 1024

    def test_query_count_does_not_grow_with_the_batch(self, api, account):
        functions = [FunctionFactory(account=account, created_at=datetime(2020, 1, 1, tzinfo=UTC)) for _ in range(5)]

        def queries(size: int, offset: int) -> int:
            batch = [event(functions[n % 5], offset + n) for n in range(size)]
            with CaptureQueriesContext(connection) as captured:
                response = post(api, batch)
            assert response.json() == {"accepted": size, "duplicates": 0}
            return len(captured)

        queries(1, 9000)  # the first request of a token also records its last use
        counts = {queries(1, 0), queries(1000, 10), queries(200, 5000)}
        assert counts == {EXPECTED_QUERIES}


class TestIdempotencyKey:
    def test_a_retry_with_the_key_replays_the_answer(self, api, account, function):
        batch = {"events": [event(function, n) for n in range(3)]}
        first = api.post(URL, batch, format="json", HTTP_IDEMPOTENCY_KEY="meter-1")
        again = api.post(URL, batch, format="json", HTTP_IDEMPOTENCY_KEY="meter-1")
        assert first.json() == again.json() == {"accepted": 3, "duplicates": 0}
        assert again["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
        # Without the key the same batch is answered as duplicates: the replay really did not run.
        assert post(api, batch["events"]).json() == {"accepted": 0, "duplicates": 3}

    def test_the_key_with_another_batch_is_422(self, api, function):
        api.post(URL, {"events": [event(function, 1)]}, format="json", HTTP_IDEMPOTENCY_KEY="meter-2")
        other = api.post(URL, {"events": [event(function, 2)]}, format="json", HTTP_IDEMPOTENCY_KEY="meter-2")
        assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"

    def test_a_key_over_255_characters_is_400(self, api, function):
        response = api.post(URL, {"events": [event(function)]}, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_parameter"
        assert not UsageEvent.objects.exists()


class TestRefusedBatches:
    def test_one_bad_event_refuses_the_whole_batch(self, api, account, function):
        batch = [event(function, n) for n in range(5)]
        batch[3]["timestamp"] = "2025-01-01 00:00:00"
        details = error_details(post(api, batch))
        assert list(details) == ["events[3].timestamp"]
        assert UsageEvent.objects.count() == 0
        function.refresh_from_db()
        assert function.last_executed is None

    def test_an_unknown_function_refuses_the_batch(self, api, function):
        batch = [event(function, n) for n in range(3)]
        batch[2]["function"] = "FUNC_0000000000"
        assert error_details(post(api, batch)) == {
            "events[2].function": ["No function 'FUNC_0000000000' in this account."]
        }
        assert UsageEvent.objects.count() == 0

    def test_another_accounts_function_is_unknown(self, api, other_user, function):
        foreign = FunctionFactory(account=other_user.account)
        details = error_details(post(api, [event(function, 1), event(foreign, 2)]))
        assert details == {"events[1].function": [f"No function '{foreign.public_id}' in this account."]}
        assert UsageEvent.objects.count() == 0

    def test_every_bad_event_is_named(self, api, function):
        batch = [event(function, n) for n in range(4)]
        batch[0]["duration_ms"] = -1
        batch[2]["memory_mb"] = 64
        batch[2]["event_id"] = ""
        assert set(error_details(post(api, batch))) == {
            "events[0].duration_ms",
            "events[2].memory_mb",
            "events[2].event_id",
        }

    def test_an_unknown_batch_key_is_named_escaped(self, api, function):
        body = json.dumps({"events": [event(function)], "\ud800x": 1})
        details = error_details(api.post(URL, data=body, content_type="application/json"))
        assert details == {"\\ud800x": ["Unknown field."]}
        assert UsageEvent.objects.count() == 0

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"event_id": None}, "event_id"),
            ({"event_id": ""}, "event_id"),
            ({"event_id": "x" * 129}, "event_id"),
            ({"event_id": 12}, "event_id"),
            ({"event_id": "a\x00b"}, "event_id"),
            ({"event_id": "line\nbreak"}, "event_id"),
            ({"event_id": "\ud800"}, "event_id"),
            ({"function": None}, "function"),
            ({"function": 7}, "function"),
            ({"function": "RES_1234567890"}, "function"),
            ({"function": "FUNC_12"}, "function"),
            ({"function": "FUNC_\x00"}, "function"),
            ({"timestamp": None}, "timestamp"),
            ({"timestamp": 1735689600}, "timestamp"),
            ({"timestamp": "yesterday"}, "timestamp"),
            ({"timestamp": "2025-01-01T00:00:00"}, "timestamp"),
            ({"timestamp": "2025-02-30T00:00:00Z"}, "timestamp"),
            ({"timestamp": "2025-01-01T24:00:00Z"}, "timestamp"),
            ({"timestamp": "9999-12-31T23:59:59-23:59"}, "timestamp"),
            ({"duration_ms": None}, "duration_ms"),
            ({"duration_ms": -1}, "duration_ms"),
            ({"duration_ms": 900_001}, "duration_ms"),
            ({"duration_ms": 10**30}, "duration_ms"),
            ({"duration_ms": 1.5}, "duration_ms"),
            ({"duration_ms": "100"}, "duration_ms"),
            ({"duration_ms": True}, "duration_ms"),
            ({"memory_mb": 127}, "memory_mb"),
            ({"memory_mb": 10241}, "memory_mb"),
            ({"memory_mb": "512"}, "memory_mb"),
            ({"memory": 512}, "memory"),
            ({"\ud800": 1}, "\\ud800"),  # an unknown key no UTF-8 response can carry as is: named escaped
        ],
    )
    def test_field_errors(self, api, function, change, field):
        bad = event(function, 1, **change)
        if change.get(field, 0) is None:
            del bad[field]
        details = error_details(post(api, [event(function, 0), bad]))
        assert list(details) == [f"events[1].{field}"]
        assert UsageEvent.objects.count() == 0

    @pytest.mark.parametrize(
        ("timestamp", "message"),
        [
            (lambda now: now + timedelta(minutes=6), "Must not be more than 5 minutes in the future."),
            (lambda now: now + timedelta(days=400), "Must not be more than 5 minutes in the future."),
            (lambda now: now - timedelta(days=70), "older months are closed"),
        ],
    )
    def test_timestamp_bounds(self, api, function, timestamp, message):
        details = error_details(post(api, [event(function, 1, timestamp=rfc3339(timestamp(timezone.now())))]))
        assert message in details["events[0].timestamp"][0]

    def test_timestamp_before_the_function_existed(self, api, account):
        young = FunctionFactory(account=account, created_at=timezone.now() - timedelta(minutes=1))
        details = error_details(post(api, [event(young, 1, timestamp=rfc3339(young.created_at - timedelta(hours=1)))]))
        assert details == {"events[0].timestamp": ["Must not be before the function was created."]}

    def test_events_of_an_invoiced_month_are_refused(self, api, account, function):
        last_month = previous_month(current_month())
        Invoice.objects.create(account=account, period=last_month, date=month_end(last_month), amount_cents=0)
        late = datetime(last_month.year, last_month.month, 15, tzinfo=UTC)
        batch = [event(function, 0), event(function, 1, timestamp=rfc3339(late))]
        details = error_details(post(api, batch))
        assert list(details) == ["events[1].timestamp"]
        assert "already invoiced" in details["events[1].timestamp"][0]
        assert UsageEvent.objects.count() == 0

    @pytest.mark.parametrize(
        ("body", "key"),
        [
            ([], "non_field_errors"),
            ("events", "non_field_errors"),
            ({}, "events"),
            ({"events": None}, "events"),
            ({"events": {}}, "events"),
            ({"events": []}, "events"),
            ({"events": [{}], "extra": 1}, "extra"),
        ],
    )
    def test_malformed_batches(self, api, body, key):
        assert key in error_details(api.post(URL, body, format="json"))

    def test_more_than_a_thousand_events(self, api, function):
        details = error_details(post(api, [event(function, n) for n in range(1001)]))
        assert details == {"events": ["Send from 1 to 1,000 events."]}

    def test_an_event_that_is_not_an_object(self, api, function):
        assert error_details(post(api, [event(function, 0), "evt-1"])) == {"events[1]": ["Must be an object."]}

    def test_malformed_json(self, api):
        assert "body" in error_details(api.post(URL, data='{"events": [', content_type="application/json"))

    def test_form_encoded_body(self, api):
        error_details(api.post(URL, data="events=1", content_type="application/x-www-form-urlencoded"))


class TestAccess:
    def test_anonymous(self, anonymous_api, function):
        response = post(anonymous_api, [event(function)])
        assert response.status_code == 401
        assert response.json()["error"]["message"] == "Invalid or missing API token"

    @pytest.mark.parametrize("scopes", [["billing:read"], ["functions:write", "functions:read"]])
    def test_needs_usage_write(self, make_client, user, function, scopes):
        response = post(make_client(user, scopes=scopes), [event(function)])
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "insufficient_scope"
        assert "usage:write" in response.json()["error"]["message"]

    def test_usage_write_alone_is_enough(self, make_client, user, function):
        assert post(make_client(user, scopes=["usage:write"]), [event(function)]).status_code == 200

    def test_get_is_not_allowed(self, api):
        assert api.get(URL).status_code == 405
