"""End to end through a real Celery worker on the real broker: what a customer sees through the API."""

import time

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

LIST = "/v1/functions"
TIMEOUT = 20
NEW = {"name": "user-authentication", "runtime": "Node.js 20", "handler": "index.handler"}


def wait_for_status(api, path: str, wanted: str, seen: list[str] | None = None) -> dict:
    """Poll the API (bounded) until the object at ``path`` reaches ``wanted``, noting each status seen."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        body = api.get(path).json()
        if seen is not None and (not seen or seen[-1] != body["status"]):
            seen.append(body["status"])
        if body["status"] == wanted:
            return body
        assert time.monotonic() < deadline, f"still {body['status']} after {TIMEOUT}s: {body}"
        time.sleep(0.02)


def create(api, **fields) -> dict:
    response = api.post(LIST, NEW | fields, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "created"
    return response.json()


def test_deploy_deprecate_delete(celery_worker, api, settings):
    settings.ELBIA_PROVISION_DELAY = 0.3  # slow enough to watch each status go by
    created = create(api, tags=["auth"], environment={"API_KEY": "value"})
    function_path = f"{LIST}/{created['id']}"
    resource_path = f"/v1/resources/{created['resource']}"
    seen: list[str] = []
    active = wait_for_status(api, function_path, "active", seen)
    assert seen == ["created", "deploying", "active"]
    assert active["deployed_at"] and active["failure_reason"] is None and active["environment"] == ["API_KEY"]

    # Its backing resource, in /v1/resources.
    resource = api.get(resource_path).json()
    assert (resource["type"], resource["status"], resource["memory"]) == ("function", "active", "128MB")
    assert "last_execution" in resource
    assert created["resource"] in [item["id"] for item in api.get("/v1/resources", {"type": "function"}).json()]
    assert api.get(resource_path, {"expand": "function"}).json()["function"]["status"] == "active"
    assert [item["id"] for item in api.get(LIST, {"status": "active", "tag": "auth"}).json()] == [created["id"]]

    # A configuration change redeploys; the resource follows the memory.
    settings.ELBIA_PROVISION_DELAY = 0
    changed = api.patch(function_path, {"memory_mb": 1024}, format="json").json()
    assert changed["status"] == "deploying"
    wait_for_status(api, function_path, "active")
    assert api.get(resource_path).json()["memory"] == "1024MB"

    deprecated = api.patch(function_path, {"status": "deprecated"}, format="json").json()
    assert deprecated["status"] == "deprecated"
    assert [item["id"] for item in api.get(LIST, {"status": "deprecated"}).json()] == [created["id"]]

    response = api.delete(function_path)
    assert response.status_code == 202 and response.json()["status"] == "deleting"
    deleted = wait_for_status(api, function_path, "deleted")
    assert deleted["failure_reason"] is None
    assert api.get(resource_path).json()["status"] == "deleted"
    assert api.get(LIST).json() == []
    assert [item["id"] for item in api.get(LIST, {"status": "deleted"}).json()] == [created["id"]]
    assert create(api)["id"] != created["id"]  # the name is free again


def test_forced_failure(celery_worker, api):
    created = create(api, tags=["simulate:fail"])
    failed = wait_for_status(api, f"{LIST}/{created['id']}", "failed")
    assert failed["failure_reason"] == f"Simulated deployment failure for {created['id']} (tag simulate:fail)."
    assert [item["id"] for item in api.get(LIST, {"status": "failed"}).json()] == [created["id"]]
    assert api.get(f"/v1/resources/{created['resource']}").json()["status"] == "active"  # the compute is fine

    # Fixed by a configuration change, after removing the trigger.
    assert api.patch(f"{LIST}/{created['id']}", {"tags": []}, format="json").status_code == 200
    assert api.patch(f"{LIST}/{created['id']}", {"timeout_s": 30}, format="json").json()["status"] == "deploying"
    assert wait_for_status(api, f"{LIST}/{created['id']}", "active")["failure_reason"] is None

    # A failed function can also just be deleted.
    other = create(api, name="broken", tags=["simulate:fail"])
    wait_for_status(api, f"{LIST}/{other['id']}", "failed")
    assert api.delete(f"{LIST}/{other['id']}").status_code == 202
    wait_for_status(api, f"{LIST}/{other['id']}", "deleted")
    assert api.get(f"/v1/resources/{other['resource']}").json()["status"] == "deleted"


def test_transient_errors_are_retried(celery_worker, api, settings):
    flaky = create(api, name="flaky", tags=["simulate:flaky"])
    hopeless = create(api, name="hopeless", tags=["simulate:transient"])
    wait_for_status(api, f"{LIST}/{flaky['id']}", "active")
    failed = wait_for_status(api, f"{LIST}/{hopeless['id']}", "failed")
    assert failed["failure_reason"].endswith(f"(gave up after {settings.ELBIA_PROVIDER_MAX_RETRIES + 1} attempts)")
