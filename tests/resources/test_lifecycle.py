"""End to end through a real Celery worker on the real broker: what a customer sees through the API."""

import time

import pytest
import redis
from celery.worker import state
from django.conf import settings as django_settings

from resources import services
from resources.models import Resource, ResourceStatus
from resources.tasks import provision_resource
from tests.resources.providers import CountingProvider

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

LIST = "/v1/resources"
TIMEOUT = 20


def wait_for_status(api, resource_id: str, wanted: str) -> dict:
    """Poll the API (bounded) until the resource reaches ``wanted``; fail with the last body otherwise."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        body = api.get(f"{LIST}/{resource_id}").json()
        if body["status"] == wanted:
            return body
        assert time.monotonic() < deadline, f"still {body['status']} after {TIMEOUT}s: {body}"
        time.sleep(0.05)


def wait_until_idle() -> None:
    """Wait (bounded) until the queue is empty and the in-process worker holds no message, twice in a row."""
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    deadline = time.monotonic() + TIMEOUT
    idle_checks = 0
    while idle_checks < 2:
        busy = (
            broker.llen(django_settings.CELERY_TASK_DEFAULT_QUEUE) or state.active_requests or state.reserved_requests
        )
        idle_checks = 0 if busy else idle_checks + 1
        assert time.monotonic() < deadline, "the worker did not become idle"
        time.sleep(0.05)


def create(api, **fields) -> dict:
    response = api.post(
        LIST, {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default", **fields}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "pending"
    return response.json()


def test_created_resource_reaches_active_and_is_deleted(celery_worker, api):
    created = create(api, name="web")
    active = wait_for_status(api, created["id"], "active")
    assert active["provisioned_at"] and active["failure_reason"] is None
    assert wait_for_status(api, created["vpc"], "active")["name"] == "default"

    assert api.delete(f"{LIST}/{created['id']}").status_code == 202
    wait_for_status(api, created["id"], "deleted")
    assert created["id"] not in [item["id"] for item in api.get(LIST).json()]

    assert api.delete(f"{LIST}/{created['vpc']}").status_code == 202  # no live member left
    wait_for_status(api, created["vpc"], "deleted")


def test_vpc_created_through_the_api(celery_worker, api):
    vpc = api.post(LIST, {"type": "vpc", "region": "eu-west-1", "name": "backend"}, format="json").json()
    compute = create(api, region="eu-west-1", vpc="backend")
    wait_for_status(api, compute["id"], "active")
    wait_for_status(api, vpc["id"], "active")


def test_forced_failure_reaches_failed_with_its_reason(celery_worker, api):
    created = create(api, tags={"simulate": "fail"})
    failed = wait_for_status(api, created["id"], "failed")
    assert failed["failure_reason"] == f"Simulated provisioning failure for {created['id']} (tag simulate=fail)."
    assert Resource.objects.get(public_id=created["id"]).failed_at is not None
    # A failed resource can be deleted.
    assert api.delete(f"{LIST}/{created['id']}").status_code == 202
    wait_for_status(api, created["id"], "deleted")


def test_transient_errors_are_retried(celery_worker, api, settings):
    flaky = create(api, tags={"simulate": "flaky"})
    hopeless = create(api, tags={"simulate": "transient"})
    wait_for_status(api, flaky["id"], "active")
    failed = wait_for_status(api, hopeless["id"], "failed")
    attempts = settings.ELBIA_PROVIDER_MAX_RETRIES + 1
    assert failed["failure_reason"].endswith(f"(gave up after {attempts} attempts)")


def test_failed_deletion(celery_worker, api):
    created = create(api)
    wait_for_status(api, created["id"], "active")
    api.patch(f"{LIST}/{created['id']}", {"tags": {"simulate": "fail-delete"}}, format="json")
    api.delete(f"{LIST}/{created['id']}")
    failed = wait_for_status(api, created["id"], "failed")
    assert "deletion failure" in failed["failure_reason"]


def test_duplicate_messages_do_the_work_once(celery_worker, api, account, settings):
    settings.ELBIA_PROVIDER = "tests.resources.providers.CountingProvider"
    CountingProvider.calls.clear()
    vpc = services.vpc_create(account=account, region="us-east-1", name="net")
    wait_for_status(api, vpc.public_id, "active")
    resource = services.resource_create(account=account, region="us-east-1", instance_type="t2.micro", vpc="net")
    for _ in range(3):  # three stray copies of the message, as a redelivery or a double click would send
        provision_resource.delay(resource.pk)
    wait_for_status(api, resource.public_id, "active")
    wait_until_idle()  # the strays have run too, and found nothing to do
    assert CountingProvider.calls["provision", resource.pk] == 1
    assert Resource.objects.get(pk=resource.pk).status == ResourceStatus.ACTIVE
