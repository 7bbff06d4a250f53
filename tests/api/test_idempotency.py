"""Idempotency-Key on creating POSTs: replay, 422 for another request, 409 while in flight, one object under races."""

import json
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from elbia.accounts.models import IdempotencyRecord
from elbia.accounts.tasks import purge_expired_idempotency_records
from elbia.api import idempotency
from resources.models import Resource
from tests.api import probe_views

pytestmark = pytest.mark.urls("tests.api.probe_views")

URL = "/v1/probe/resources"
VIEWSET_URL = "/v1/probe/items"
BODY = {"name": "web-1", "region": "eu-west-1"}


def post(client, body=BODY, key="key-1", url=URL):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post(url, data=raw, content_type="application/json", **headers)


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.fixture(autouse=True)
def _no_leftover_failures():
    probe_views.FAILURES.clear()
    yield
    probe_views.FAILURES.clear()


@pytest.mark.django_db
class TestReplay:
    def test_retry_replays_the_first_response_and_creates_nothing(self, api):
        first = post(api)
        assert first.status_code == 201
        assert "Idempotent-Replayed" not in first
        retry = post(api)
        assert retry.status_code == 201
        assert retry["Idempotent-Replayed"] == "true"
        assert retry.content == first.content
        assert retry["Location"] == first["Location"] == f"/v1/resources/{first.json()['id']}"
        assert Resource.objects.count() == 1

    def test_the_same_json_written_differently_is_the_same_request(self, api):
        first = post(api, '{"name": "web-1", "region": "eu-west-1"}')
        retry = post(api, '{"region":"eu-west-1",\n "name":"web-1"}')
        assert retry["Idempotent-Replayed"] == "true"
        assert retry.json() == first.json()

    def test_without_a_key_every_post_creates(self, api):
        assert post(api, key=None).status_code == 201
        assert post(api, key=None).status_code == 201
        assert Resource.objects.count() == 2

    def test_viewset_opting_in_with_the_mixin(self, api):
        first = post(api, {"name": "db-1", "region": "us-east-1"}, url=VIEWSET_URL)
        assert first.status_code == 201
        retry = post(api, {"name": "db-1", "region": "us-east-1"}, url=VIEWSET_URL)
        assert retry["Idempotent-Replayed"] == "true"
        assert retry.json() == first.json()
        assert Resource.objects.count() == 1

    def test_client_errors_are_stored_and_replayed(self, api):
        invalid = post(api, {"region": "eu-west-1"})
        assert invalid.status_code == 400
        assert post(api, {"region": "eu-west-1"})["Idempotent-Replayed"] == "true"
        conflict = post(api, {"name": "taken"}, key="key-2")
        assert conflict.status_code == 409 and error_code(conflict) == "conflict"
        replay = post(api, {"name": "taken"}, key="key-2")
        assert (replay.status_code, replay["Idempotent-Replayed"]) == (409, "true")
        assert replay.content == conflict.content
        assert Resource.objects.count() == 0  # the refused request's row was rolled back

    def test_server_error_forgets_the_key_so_a_retry_runs(self, api):
        probe_views.FAILURES.append("crash")
        failed = post(api)
        assert failed.status_code == 500 and error_code(failed) == "internal_error"
        assert failed["X-RateLimit-Remaining"] == "4999"
        assert not IdempotencyRecord.objects.exists()
        assert Resource.objects.count() == 0
        retry = post(api)
        assert retry.status_code == 201 and "Idempotent-Replayed" not in retry
        assert Resource.objects.count() == 1

    def test_replay_costs_no_write(self, api, django_assert_num_queries):
        post(api)
        # The stored record (the token was validated by the first request and is cached).
        with django_assert_num_queries(1):
            assert post(api)["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
class TestRefusals:
    def test_same_key_with_another_body_is_422(self, api):
        post(api)
        response = post(api, {**BODY, "name": "web-2"})
        assert response.status_code == 422
        assert error_code(response) == "idempotency_key_reused"
        assert "Idempotency-Key" in response.json()["error"]["message"]
        assert Resource.objects.count() == 1

    def test_same_key_on_another_endpoint_is_422(self, api):
        post(api)
        assert error_code(post(api, url=VIEWSET_URL)) == "idempotency_key_reused"

    @pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "caf\u00e9", "nul\x00"])
    def test_bad_keys_are_400(self, api, key):
        response = post(api, key=key)
        assert response.status_code == 400
        assert error_code(response) == "invalid_parameter"
        assert "Idempotency-Key" in response.json()["error"]["message"]
        assert Resource.objects.count() == 0

    def test_longest_key(self, api):
        assert post(api, key="k" * 255).status_code == 201
        assert post(api, key="k" * 255)["Idempotent-Replayed"] == "true"

    def test_keys_belong_to_an_account(self, api, other_api, make_client, user):
        first = post(api)
        other = post(other_api)
        assert other.status_code == 201 and "Idempotent-Replayed" not in other
        assert other.json()["id"] != first.json()["id"]
        # Another token of the same account shares the account's keys.
        same_account = make_client(user)
        assert post(same_account)["Idempotent-Replayed"] == "true"
        assert Resource.objects.count() == 2

    def test_unauthenticated_requests_do_not_reach_the_keys(self, anonymous_api):
        assert post(anonymous_api).status_code == 401
        assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
class TestExpiry:
    def test_a_key_older_than_a_day_is_free_again(self, api):
        post(api)
        IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))
        response = post(api, {**BODY, "name": "web-2"})
        assert response.status_code == 201 and "Idempotent-Replayed" not in response
        assert Resource.objects.count() == 2

    def test_periodic_purge_deletes_expired_records_only(self, api):
        post(api, key="old")
        post(api, key="new")
        IdempotencyRecord.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
        assert purge_expired_idempotency_records() == 1
        assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]
        schedule = settings.CELERY_BEAT_SCHEDULE["purge-expired-idempotency-records"]
        assert schedule["task"] == purge_expired_idempotency_records.name

    def test_a_recent_unfinished_claim_is_in_flight(self, api):
        post(api)
        IdempotencyRecord.objects.update(completed_at=None)
        response = post(api)
        assert response.status_code == 409
        assert error_code(response) == "idempotency_conflict"

    def test_an_abandoned_claim_is_taken_over(self, api):
        # A worker killed mid-request leaves its claim unfinished, unlocked and its work rolled back.
        post(api)
        Resource.objects.all().delete()
        IdempotencyRecord.objects.update(completed_at=None, created_at=timezone.now() - timedelta(seconds=30))
        response = post(api)
        assert response.status_code == 201 and "Idempotent-Replayed" not in response
        assert Resource.objects.count() == 1
        assert post(api)["Idempotent-Replayed"] == "true"


def same_token(api) -> APIClient:
    """A client of its own (one per thread) sending ``api``'s token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api.issued.access_token}")
    return client


def in_thread(target, results: list, *args):
    """Run ``target(*args)`` in a thread with its own database connection; append its result."""

    def run():
        try:
            results.append(target(*args))
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
class TestConcurrency:
    def test_a_request_while_the_first_runs_is_409(self, api, monkeypatch):
        # No grace for young claims: the running request's row lock alone must keep its key.
        monkeypatch.setattr(idempotency, "CLAIM_GRACE", timedelta(0))
        results = []
        first = in_thread(post, results, same_token(api), {**BODY, "hold": 1.5})
        deadline = time.monotonic() + 5
        while not IdempotencyRecord.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # the first request locks its claim right after committing it
        during = post(api, {**BODY, "hold": 1.5})
        first.join(timeout=10)
        assert during.status_code == 409
        assert error_code(during) == "idempotency_conflict"
        assert [response.status_code for response in results] == [201]
        after = post(api, {**BODY, "hold": 1.5})
        assert (after.status_code, after["Idempotent-Replayed"]) == (201, "true")
        assert after.json() == results[0].json()
        assert Resource.objects.count() == 1

    def test_concurrent_identical_posts_create_one_object(self, api):
        body = {**BODY, "hold": 0.3}
        start = threading.Barrier(8, timeout=10)
        results = []

        def racer():
            client = same_token(api)
            start.wait()
            return post(client, body)

        threads = [in_thread(racer, results) for _ in range(8)]
        for thread in threads:
            thread.join(timeout=20)
        assert len(results) == 8
        assert {response.status_code for response in results} <= {201, 409}
        originals = [r for r in results if r.status_code == 201 and "Idempotent-Replayed" not in r]
        assert len(originals) == 1
        replays = [r for r in results if r.status_code == 201 and r is not originals[0]]
        assert all(r.json() == originals[0].json() for r in replays)
        assert Resource.objects.count() == 1
        assert post(api, body)["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_openapi_documents_the_header_on_opted_in_operations(api):
    schema = api.get("/v1/openapi.json").json()
    operation = schema["paths"]["/v1/probe/resources"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert {"409", "422"} <= set(operation["responses"])
    regions = schema["paths"]["/v1/regions"]["get"]
    assert "Idempotency-Key" not in {p["name"] for p in regions.get("parameters", [])}
