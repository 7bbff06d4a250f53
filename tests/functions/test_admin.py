"""Functions in the admin: listed and searched like resources, a failed deployment retried through its service."""

import time

import pytest

from functions.models import Function, FunctionStatus
from tests.admin_actions import messages_of, run_action, staff_events
from tests.functions.factories import FunctionFactory

pytestmark = pytest.mark.django_db

LIST = "functions/function"


def test_retry_a_failed_deployment(staff_client, staff_user, account):
    function = FunctionFactory(account=account, status=FunctionStatus.FAILED, failure_reason="bad handler")
    active = FunctionFactory(account=account)
    response = run_action(staff_client, LIST, "retry_deploy", [function, active])
    function.refresh_from_db()
    assert (function.status, function.failure_reason) == (FunctionStatus.DEPLOYING, "")
    assert any(f"refused for {active}: Only failed functions can be retried" in m for m in messages_of(response))
    event = staff_events("function.retry_deploy").get()
    assert (event.object_id, event.account, event.actor_user) == (function.public_id, account, staff_user)


def test_a_function_already_deploying_is_left_alone(staff_client, account):
    function = FunctionFactory(account=account, status=FunctionStatus.DEPLOYING)
    response = run_action(staff_client, LIST, "retry_deploy", [function])
    assert any("nothing to do for 1" in message for message in messages_of(response))
    assert not staff_events("function.retry_deploy").exists()


def test_support_is_not_offered_the_retry(group_client, account):
    function = FunctionFactory(account=account, status=FunctionStatus.FAILED)
    support = group_client("support")
    assert 'name="action"' not in support.get(f"/admin/{LIST}/").content.decode()
    assert run_action(support, LIST, "retry_deploy", [function]).status_code == 403
    function.refresh_from_db()
    assert function.status == FunctionStatus.FAILED


def test_the_page_shows_environment_names_never_values(staff_client, account):
    function = FunctionFactory(
        account=account, environment={"API_KEY": "s3cr3t-value"}, runtime="Python 3.12", handler="app.handler"
    )
    page = staff_client.get(f"/admin/{LIST}/{function.pk}/change/").content.decode()
    assert "API_KEY" in page
    assert "s3cr3t-value" not in page
    assert f"/admin/resources/resource/{function.resource_id}/change/" in page
    assert f"/admin/billing/usageevent/?q={function.public_id}" in page
    assert 'name="_save"' not in page


@pytest.mark.parametrize(
    "lookup", ["environment__API_KEY__startswith", "environment__API_KEY", "environment__has_key", "environment"]
)
def test_the_list_cannot_be_filtered_by_environment_values(staff_client, account, lookup):
    """A filter on the values would answer "does the secret start with s3?" one guess at a time."""
    FunctionFactory(account=account, environment={"API_KEY": "s3cr3t-value"})
    response = staff_client.get(f"/admin/{LIST}/", {lookup: "s3"})
    assert response.status_code == 400


def test_the_list_filters_by_runtime(staff_client, account):
    FunctionFactory(account=account, name="in-python", runtime="Python 3.12", handler="app.handler")
    FunctionFactory(account=account, name="in-node")
    page = staff_client.get(f"/admin/{LIST}/", {"runtime": "Python 3.12"}).content.decode()
    assert "in-python" in page
    assert "in-node" not in page


@pytest.mark.slow
def test_a_retried_deployment_goes_live_through_a_worker(celery_worker, staff_client, api, settings):
    settings.ELBIA_PROVISION_DELAY = 0
    body = {"name": "flaky-fn", "runtime": "Node.js 20", "handler": "index.handler", "tags": ["simulate:fail"]}
    created = api.post("/v1/functions", body, format="json").json()
    path = f"/v1/functions/{created['id']}"

    def wait_for(status: str) -> dict:
        deadline = time.monotonic() + 20
        while (current := api.get(path).json())["status"] != status:
            assert time.monotonic() < deadline, current
            time.sleep(0.05)
        return current

    assert "Simulated deployment failure" in wait_for("failed")["failure_reason"]
    assert api.patch(path, {"tags": []}, format="json").json()["status"] == "failed"  # tags do not redeploy

    function = Function.objects.get(public_id=created["id"])
    run_action(staff_client, LIST, "retry_deploy", [function])
    assert wait_for("active")["failure_reason"] is None
    assert staff_events("function.retry_deploy").get().object_id == created["id"]
