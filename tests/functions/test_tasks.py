"""The deployment and deletion task bodies, run in-process (eager): claims, waiting, failures and the reaper."""

from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from functions.models import Function, FunctionStatus
from functions.tasks import delete_function, deploy_function, reap_stuck_functions
from resources.models import Resource, ResourceStatus
from tests.functions.factories import FunctionFactory
from tests.functions.providers import CountingProvider

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def deployments(settings):
    settings.ELBIA_PROVIDER = "tests.functions.providers.CountingProvider"
    CountingProvider.deployments.clear()
    return CountingProvider.deployments


@pytest.fixture
def created(account):
    return FunctionFactory(account=account, status=FunctionStatus.CREATED, deployed_at=None)


@pytest.fixture
def deleting(account):
    function = FunctionFactory(account=account, status=FunctionStatus.DELETING)
    Resource.objects.filter(pk=function.resource_id).update(status=ResourceStatus.DELETING)
    return function


def reload(function) -> Function:
    return Function.objects.get(pk=function.pk)


def set_resource(function, status: str, **fields) -> None:
    Resource.objects.filter(pk=function.resource_id).update(status=status, **fields)


class TestDeploy:
    def test_created_becomes_active_once(self, created, deployments):
        assert deploy_function.apply(args=[created.pk]).get() == "done"
        assert deploy_function.apply(args=[created.pk]).get() == "nothing to do"
        function = reload(created)
        assert function.status == FunctionStatus.ACTIVE and function.deployed_at is not None
        assert (function.lifecycle_task_id, function.failure_reason) == ("", "")
        assert deployments[created.pk] == 1

    def test_redeploys_a_changed_configuration(self, created, deployments):
        Function.objects.filter(pk=created.pk).update(status=FunctionStatus.DEPLOYING)
        assert deploy_function.apply(args=[created.pk]).get() == "done"
        assert reload(created).status == FunctionStatus.ACTIVE

    @pytest.mark.parametrize("resource_status", [ResourceStatus.PENDING, ResourceStatus.PROVISIONING])
    def test_waits_for_its_resource(self, created, deployments, resource_status):
        set_resource(created, resource_status)
        with pytest.raises(Retry):
            deploy_function(created.pk)
        assert reload(created).status == FunctionStatus.CREATED
        assert not deployments

    def test_fails_when_its_resource_failed(self, created, deployments):
        set_resource(created, ResourceStatus.FAILED, failure_reason="No capacity.")
        assert deploy_function.apply(args=[created.pk]).get() == "nothing to do"
        function = reload(created)
        assert function.status == FunctionStatus.FAILED and function.failed_at is not None
        assert function.failure_reason == f"Its resource {created.resource.public_id} is failed: No capacity."
        assert not deployments

    def test_provider_refusal_fails_with_its_reason(self, created):
        Function.objects.filter(pk=created.pk).update(tags=["simulate:fail"])
        assert deploy_function.apply(args=[created.pk]).get() == "failed"
        function = reload(created)
        assert function.status == FunctionStatus.FAILED
        assert function.failure_reason == f"Simulated deployment failure for {created.public_id} (tag simulate:fail)."

    def test_transient_errors_retry_then_give_up(self, created, deployments, settings):
        settings.ELBIA_PROVIDER_MAX_RETRIES = 2
        Function.objects.filter(pk=created.pk).update(tags=["simulate:transient"])
        deploy_function.apply(args=[created.pk])
        function = reload(created)
        assert deployments[created.pk] == 3
        assert function.status == FunctionStatus.FAILED
        assert function.failure_reason.endswith("(gave up after 3 attempts)")

    def test_one_transient_error_then_success(self, created, deployments):
        Function.objects.filter(pk=created.pk).update(tags=["simulate:flaky"])
        deploy_function.apply(args=[created.pk])
        assert deployments[created.pk] == 2
        assert reload(created).status == FunctionStatus.ACTIVE

    def test_unexpected_errors_are_recorded_by_the_failure_handler(self, created, settings):
        settings.ELBIA_PROVIDER = "tests.functions.providers.BrokenProvider"
        deploy_function.apply(args=[created.pk])
        function = reload(created)
        assert function.status == FunctionStatus.FAILED
        assert function.failure_reason == "Internal error during deployment; the team has been notified."

    def test_a_step_owned_by_another_message_is_left_alone(self, created, deployments):
        Function.objects.filter(pk=created.pk).update(status=FunctionStatus.DEPLOYING, lifecycle_task_id="first")
        assert deploy_function.apply(args=[created.pk], task_id="second").get() == "nothing to do"
        assert not deployments and reload(created).status == FunctionStatus.DEPLOYING

    def test_leaves_settled_functions_alone(self, account, deployments):
        for status in (FunctionStatus.ACTIVE, FunctionStatus.DEPRECATED, FunctionStatus.FAILED, FunctionStatus.DELETED):
            function = FunctionFactory(account=account, status=status)
            assert deploy_function.apply(args=[function.pk]).get() == "nothing to do"
            assert reload(function).status == status
        assert deploy_function.apply(args=[10**9]).get() == "nothing to do"
        assert not deployments


class TestDelete:
    def test_waits_while_its_resource_is_deleting(self, deleting):
        with pytest.raises(Retry):
            delete_function(deleting.pk)
        function = reload(deleting)
        assert function.status == FunctionStatus.DELETING and function.lifecycle_task_id  # claimed, waiting

    def test_deleted_once_its_resource_is(self, deleting):
        set_resource(deleting, ResourceStatus.DELETED)
        assert delete_function.apply(args=[deleting.pk]).get() == "done"
        function = reload(deleting)
        assert function.status == FunctionStatus.DELETED and function.deleted_at is not None
        assert delete_function.apply(args=[deleting.pk]).get() == "nothing to do"

    def test_fails_when_tearing_down_its_resource_failed(self, deleting):
        set_resource(deleting, ResourceStatus.FAILED, failure_reason="Simulated deletion failure.")
        assert delete_function.apply(args=[deleting.pk]).get() == "failed"
        function = reload(deleting)
        assert function.status == FunctionStatus.FAILED
        assert function.failure_reason == (
            f"Tearing down its resource {deleting.resource.public_id} failed: Simulated deletion failure."
        )

    def test_a_function_without_resource_is_deleted_at_once(self, account):
        function = FunctionFactory(account=account, status=FunctionStatus.DELETING, resource=None)
        assert delete_function.apply(args=[function.pk]).get() == "done"
        assert reload(function).status == FunctionStatus.DELETED

    def test_does_not_touch_live_functions(self, account):
        function = FunctionFactory(account=account)
        assert delete_function.apply(args=[function.pk]).get() == "nothing to do"
        assert reload(function).status == FunctionStatus.ACTIVE


class TestReaper:
    def age(self, function, status, seconds: float, **fields):
        Function.objects.filter(pk=function.pk).update(
            status=status, updated_at=timezone.now() - timedelta(seconds=seconds), **fields
        )

    def test_requeues_stuck_deployments_then_fails_them(self, created, settings, django_capture_on_commit_callbacks):
        settings.ELBIA_STUCK_AFTER, settings.ELBIA_STUCK_REQUEUES = 60, 2
        for attempt in (1, 2):
            self.age(created, FunctionStatus.DEPLOYING, 61, lifecycle_task_id="dead-worker")
            with django_capture_on_commit_callbacks() as queued:
                assert reap_stuck_functions.apply().get() == {"requeued": 1, "failed": 0}
            assert [callback.task_name for callback in queued] == ["functions.tasks.deploy_function"]
            function = reload(created)
            assert (function.requeue_count, function.lifecycle_task_id) == (attempt, "")
        self.age(created, FunctionStatus.DEPLOYING, 61)
        assert reap_stuck_functions.apply().get() == {"requeued": 0, "failed": 1}
        function = reload(created)
        assert function.status == FunctionStatus.FAILED
        assert function.failure_reason == "The deployment did not finish after 3 attempts."

    def test_a_requeued_deployment_is_finished_by_the_new_message(self, created, settings, monkeypatch):
        settings.ELBIA_STUCK_AFTER = 60
        self.age(created, FunctionStatus.DEPLOYING, 61, lifecycle_task_id="dead-worker")
        monkeypatch.setattr("elbia.lifecycle.transaction.on_commit", lambda *args, **kwargs: None)
        reap_stuck_functions.apply()
        assert deploy_function.apply(args=[created.pk], task_id="new").get() == "done"
        assert reload(created).status == FunctionStatus.ACTIVE

    def test_stuck_deletion_requeues_the_deletion(self, deleting, settings, django_capture_on_commit_callbacks):
        settings.ELBIA_STUCK_AFTER = 60
        self.age(deleting, FunctionStatus.DELETING, 61)
        with django_capture_on_commit_callbacks() as queued:
            assert reap_stuck_functions.apply().get() == {"requeued": 1, "failed": 0}
        assert queued[0].task_name == "functions.tasks.delete_function"

    def test_leaves_recent_and_settled_functions_alone(self, account, created, settings):
        settings.ELBIA_STUCK_AFTER = 60
        settled = FunctionFactory(account=account)
        self.age(settled, FunctionStatus.ACTIVE, 3600)
        assert reap_stuck_functions.apply().get() == {"requeued": 0, "failed": 0}
        assert reload(created).requeue_count == 0
