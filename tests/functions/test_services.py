"""The function services: what they write, in one transaction, and what they never log."""

import logging

import pytest
from django.core.exceptions import ValidationError

from elbia.api.exceptions import Conflict
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
