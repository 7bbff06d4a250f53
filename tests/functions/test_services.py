"""The function services: what they write, in one transaction, and what they never log."""

import logging

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from elbia.errors import Conflict
from functions import services
from functions.models import Function, FunctionStatus, FunctionTag
from resources.models import Resource, ResourceStatus
from tests.functions.conftest import SECRET
from tests.functions.factories import FunctionFactory

pytestmark = pytest.mark.django_db

NEW = {"name": "user-authentication", "runtime": "Node.js 20", "handler": "index.handler"}


def test_create_writes_the_function_its_resource_and_tags(account):
    function = services.function_create(account=account, **NEW, tags=["auth", "edge"], memory_mb=256)
    assert function.status == FunctionStatus.CREATED and function.deployment_started == function.created_at
    assert (function.resource.type, function.resource.memory_mb, function.resource.status) == (
        "function",
        256,
        ResourceStatus.PENDING,
    )
    assert sorted(FunctionTag.objects.filter(function=function, account=account).values_list("tag", flat=True)) == [
        "auth",
        "edge",
    ]


def test_create_validates_before_writing_anything(account):
    with pytest.raises(ValidationError) as caught:
        services.function_create(account=account, **NEW | {"runtime": "Go 1.x", "handler": "a b"}, memory_mb=64)
    assert set(caught.value.message_dict) == {"runtime", "handler", "memory_mb"}
    assert not Function.objects.exists() and not Resource.objects.exists()


def test_a_conflict_leaves_nothing_behind(account):
    services.function_create(account=account, **NEW)
    with pytest.raises(Conflict):
        services.function_create(account=account, **NEW)
    assert Function.objects.count() == Resource.objects.count() == 1


def test_tag_rows_follow_the_tags(account):
    function = FunctionFactory(account=account, tags=["a", "b"])
    FunctionTag.objects.create(account=account, function=function, tag="stray")  # drifted: healed on the next write
    services.function_update(function=function, tags=["b", "c"])
    assert sorted(FunctionTag.objects.values_list("tag", flat=True)) == ["b", "c"]


def test_memory_change_resizes_the_resource(account):
    function = FunctionFactory(account=account)
    services.function_update(function=function, memory_mb=2048)
    assert Resource.objects.get(pk=function.resource_id).memory_mb == 2048
    assert Function.objects.get(pk=function.pk).status == FunctionStatus.DEPLOYING


def test_environment_values_are_never_logged(api, account, caplog, eager_celery, django_capture_on_commit_callbacks):
    """The whole life of a function, through the API and the tasks, logged at DEBUG: no value appears."""
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            "/v1/functions", NEW | {"environment": {"API_KEY": SECRET}, "tags": ["simulate:flaky"]}, format="json"
        ).json()
    function_id = created["id"]
    assert api.get(f"/v1/functions/{function_id}").json()["status"] == "active"
    with django_capture_on_commit_callbacks(execute=True):
        changed = api.patch(
            f"/v1/functions/{function_id}", {"environment": {"TOKEN": SECRET}, "tags": ["simulate:fail"]}, format="json"
        )
    assert changed.status_code == 200
    assert api.get(f"/v1/functions/{function_id}").json()["status"] == "failed"
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/v1/functions", NEW | {"environment": {"A": SECRET, "B": 1}}, format="json").status_code == 400
        assert api.delete(f"/v1/functions/{function_id}").status_code == 202
    assert api.get(f"/v1/functions/{function_id}").json()["status"] == "deleted"
    assert f"Function {function_id}: deployment done" in caplog.text  # the lifecycle was logged...
    assert f"Function {function_id}: deployment failed" in caplog.text
    assert SECRET not in caplog.text  # ...without any value
    assert Function.objects.get(public_id=function_id).environment == {"API_KEY": SECRET, "TOKEN": SECRET}


class TestRetryDeploy:
    def failed(self, account, **resource_state) -> Function:
        function = FunctionFactory(account=account, status=FunctionStatus.FAILED, failure_reason="boom")
        if resource_state:
            Resource.objects.filter(pk=function.resource_id).update(**resource_state)
        return function

    def test_a_failed_deployment_is_queued_again(self, account, django_capture_on_commit_callbacks):
        function = self.failed(account)
        with django_capture_on_commit_callbacks() as queued:
            services.function_retry_deploy(function=function)
        function.refresh_from_db()
        assert (function.status, function.failure_reason, function.failed_at) == (FunctionStatus.DEPLOYING, "", None)
        assert function.deployment_started is not None
        assert len(queued) == 1  # the deployment; its resource is active and stays so
        assert Resource.objects.get(pk=function.resource_id).status == ResourceStatus.ACTIVE

    def test_a_failed_resource_is_provisioned_again_first(self, account, django_capture_on_commit_callbacks):
        function = self.failed(account, status=ResourceStatus.FAILED, failure_reason="no capacity")
        with django_capture_on_commit_callbacks() as queued:
            services.function_retry_deploy(function=function)
        resource = Resource.objects.get(pk=function.resource_id)
        assert (resource.status, resource.failure_reason) == (ResourceStatus.PENDING, "")
        assert len(queued) == 2  # the resource's provisioning, then the deployment (which waits for it)

    @pytest.mark.parametrize("status", ["active", "deploying", "created", "deprecated", "deleting", "deleted"])
    def test_only_failed_functions_are_retried(self, account, status):
        function = FunctionFactory(account=account, status=status)
        with pytest.raises(Conflict, match=f"Only failed functions can be retried; {function.public_id} is {status}"):
            services.function_retry_deploy(function=function)

    def test_a_function_that_failed_while_being_deleted_is_not_redeployed(self, account):
        function = self.failed(account, status=ResourceStatus.FAILED, deleting_started_at=timezone.now())
        with pytest.raises(Conflict, match="failed while being deleted"):
            services.function_retry_deploy(function=function)
        function.refresh_from_db()
        assert function.status == FunctionStatus.FAILED
        assert Resource.objects.get(pk=function.resource_id).status == ResourceStatus.FAILED
