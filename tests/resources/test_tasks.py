"""The lifecycle task bodies, run in-process (eager): claims, idempotency, retries, failures and the reaper."""

from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.utils import timezone

from elbia.models import OutboxMessage
from elbia.providers import TransientProviderError
from resources.models import Resource, ResourceStatus
from resources.tasks import deprovision_resource, provision_resource, reap_stuck_resources
from tests.resources.factories import ComputeFactory
from tests.resources.providers import CountingProvider

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def counting(settings):
    settings.ELBIA_PROVIDER = "tests.resources.providers.CountingProvider"
    CountingProvider.calls.clear()
    return CountingProvider.calls


@pytest.fixture
def pending(compute):
    compute.status, compute.provisioned_at = ResourceStatus.PENDING, None
    compute.save()
    return compute


def reload(resource) -> Resource:
    return Resource.objects.get(pk=resource.pk)


class TestProvision:
    def test_pending_becomes_active_once(self, pending, counting):
        assert provision_resource.apply(args=[pending.pk]).get() == "done"
        assert provision_resource.apply(args=[pending.pk]).get() == "nothing to do"
        resource = reload(pending)
        assert resource.status == ResourceStatus.ACTIVE and resource.provisioned_at is not None
        assert resource.lifecycle_task_id == ""
        assert counting["provision", pending.pk] == 1

    def test_a_step_owned_by_another_message_is_left_alone(self, pending, counting):
        Resource.objects.filter(pk=pending.pk).update(status=ResourceStatus.PROVISIONING, lifecycle_task_id="first")
        assert provision_resource.apply(args=[pending.pk], task_id="second").get() == "nothing to do"
        assert counting["provision", pending.pk] == 0
        assert reload(pending).status == ResourceStatus.PROVISIONING

    def test_the_owner_resumes_after_a_redelivery(self, pending):
        Resource.objects.filter(pk=pending.pk).update(status=ResourceStatus.PROVISIONING, lifecycle_task_id="first")
        assert provision_resource.apply(args=[pending.pk], task_id="first").get() == "done"
        assert reload(pending).status == ResourceStatus.ACTIVE

    def test_provider_refusal_fails_with_its_reason(self, pending):
        Resource.objects.filter(pk=pending.pk).update(tags={"simulate": "fail"})
        assert provision_resource.apply(args=[pending.pk]).get() == "failed"
        resource = reload(pending)
        assert resource.status == ResourceStatus.FAILED and resource.failed_at is not None
        assert resource.failure_reason == f"Simulated provisioning failure for {pending.public_id} (tag simulate=fail)."

    def test_transient_errors_retry_then_give_up(self, pending, counting, settings):
        settings.ELBIA_PROVIDER_MAX_RETRIES = 2
        Resource.objects.filter(pk=pending.pk).update(tags={"simulate": "transient"})
        provision_resource.apply(args=[pending.pk])
        resource = reload(pending)
        assert counting["provision", pending.pk] == 3
        assert resource.status == ResourceStatus.FAILED
        assert resource.failure_reason.endswith("(gave up after 3 attempts)")

    def test_one_transient_error_then_success(self, pending, counting):
        Resource.objects.filter(pk=pending.pk).update(tags={"simulate": "flaky"})
        provision_resource.apply(args=[pending.pk])
        assert counting["provision", pending.pk] == 2
        assert reload(pending).status == ResourceStatus.ACTIVE

    def test_unexpected_errors_are_recorded_by_the_failure_handler(self, pending, settings):
        settings.ELBIA_PROVIDER = "tests.resources.providers.BrokenProvider"
        provision_resource.apply(args=[pending.pk])
        resource = reload(pending)
        assert resource.status == ResourceStatus.FAILED
        assert resource.failure_reason == "Internal error during provisioning; the team has been notified."

    def test_waits_for_its_vpc(self, pending, counting):
        Resource.objects.filter(pk=pending.vpc_id).update(status=ResourceStatus.PROVISIONING)
        with pytest.raises(Retry):
            provision_resource(pending.pk)
        assert reload(pending).status == ResourceStatus.PENDING
        assert counting["provision", pending.pk] == 0

    def test_fails_when_its_vpc_failed(self, pending):
        Resource.objects.filter(pk=pending.vpc_id).update(status=ResourceStatus.FAILED)
        assert provision_resource.apply(args=[pending.pk]).get() == "nothing to do"
        resource = reload(pending)
        assert (resource.status, resource.failure_reason) == (ResourceStatus.FAILED, "Its VPC is failed.")

    def test_unknown_or_finished_resources_are_ignored(self, compute, counting):
        assert provision_resource.apply(args=[10**9]).get() == "nothing to do"
        assert provision_resource.apply(args=[compute.pk]).get() == "nothing to do"  # already active
        assert not counting


class TestDeprovision:
    def test_deleting_becomes_deleted_once(self, compute, counting):
        Resource.objects.filter(pk=compute.pk).update(status=ResourceStatus.DELETING)
        assert deprovision_resource.apply(args=[compute.pk]).get() == "done"
        assert deprovision_resource.apply(args=[compute.pk]).get() == "nothing to do"
        resource = reload(compute)
        assert resource.status == ResourceStatus.DELETED and resource.deleted_at is not None
        assert counting["deprovision", compute.pk] == 1

    def test_refused_deletion_fails(self, compute):
        Resource.objects.filter(pk=compute.pk).update(status=ResourceStatus.DELETING, tags={"simulate": "fail-delete"})
        deprovision_resource.apply(args=[compute.pk])
        resource = reload(compute)
        assert resource.status == ResourceStatus.FAILED and "deletion failure" in resource.failure_reason

    def test_does_not_touch_active_resources(self, compute, counting):
        assert deprovision_resource.apply(args=[compute.pk]).get() == "nothing to do"
        assert reload(compute).status == ResourceStatus.ACTIVE and not counting


class TestReaper:
    def age(self, resource, status, seconds: float, **fields):
        Resource.objects.filter(pk=resource.pk).update(
            status=status, updated_at=timezone.now() - timedelta(seconds=seconds), **fields
        )

    def test_requeues_stuck_work_then_fails_it(self, compute, settings, django_capture_on_commit_callbacks):
        settings.ELBIA_STUCK_AFTER, settings.ELBIA_STUCK_REQUEUES = 60, 2
        for attempt in (1, 2):
            self.age(compute, ResourceStatus.PROVISIONING, 61, lifecycle_task_id="dead-worker")
            with django_capture_on_commit_callbacks() as queued:
                assert reap_stuck_resources.apply().get() == {"requeued": 1, "failed": 0}
            assert len(queued) == 1
            resource = reload(compute)
            assert (resource.requeue_count, resource.lifecycle_task_id) == (attempt, "")
        self.age(compute, ResourceStatus.PROVISIONING, 61)
        assert reap_stuck_resources.apply().get() == {"requeued": 0, "failed": 1}
        resource = reload(compute)
        assert resource.status == ResourceStatus.FAILED
        assert resource.failure_reason == "The provisioning did not finish after 3 attempts."

    def test_a_requeued_step_is_finished_by_the_new_message(self, compute, settings):
        settings.ELBIA_STUCK_AFTER = 60
        self.age(compute, ResourceStatus.PROVISIONING, 61, lifecycle_task_id="dead-worker")
        with pytest.MonkeyPatch.context() as patch:  # queue nothing: run the requeued task here instead
            patch.setattr("elbia.lifecycle.transaction.on_commit", lambda *args, **kwargs: None)
            reap_stuck_resources.apply()
        assert provision_resource.apply(args=[compute.pk], task_id="new").get() == "done"
        assert reload(compute).status == ResourceStatus.ACTIVE

    def test_leaves_recent_and_settled_resources_alone(self, account, vpc, settings):
        settings.ELBIA_STUCK_AFTER = 60
        recent = ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.PENDING)
        settled = ComputeFactory(account=account, vpc=vpc)
        self.age(settled, ResourceStatus.ACTIVE, 3600)
        assert reap_stuck_resources.apply().get() == {"requeued": 0, "failed": 0}
        assert reload(recent).requeue_count == 0

    def test_stuck_deletion_requeues_the_deletion(self, compute, settings, django_capture_on_commit_callbacks):
        settings.ELBIA_STUCK_AFTER = 60
        self.age(compute, ResourceStatus.DELETING, 61)
        with django_capture_on_commit_callbacks() as queued:
            reap_stuck_resources.apply()
        assert queued[0].task_name == "resources.tasks.deprovision_resource"

    def test_a_claim_whose_heartbeat_stopped_is_handed_over_at_once(self, compute, settings):
        settings.ELBIA_STUCK_AFTER, settings.ELBIA_HEARTBEAT_TIMEOUT = 600, 30
        beat = timezone.now() - timedelta(seconds=31)
        self.age(compute, ResourceStatus.PROVISIONING, 1, lifecycle_task_id="dead-worker", heartbeat_at=beat)
        assert reap_stuck_resources.apply().get() == {"requeued": 1, "failed": 0}
        assert reload(compute).lifecycle_task_id == ""

    def test_a_claim_with_a_live_heartbeat_is_left_alone_however_long_it_takes(self, compute, settings):
        settings.ELBIA_STUCK_AFTER, settings.ELBIA_HEARTBEAT_TIMEOUT = 60, 30
        beat = timezone.now() - timedelta(seconds=5)
        self.age(compute, ResourceStatus.PROVISIONING, 3600, lifecycle_task_id="slow-worker", heartbeat_at=beat)
        assert reap_stuck_resources.apply().get() == {"requeued": 0, "failed": 0}
        assert reload(compute).lifecycle_task_id == "slow-worker"

    def test_a_retry_keeps_its_claim_alive_until_it_is_due(self, pending, settings):
        settings.ELBIA_RETRY_BACKOFF, settings.ELBIA_HEARTBEAT_TIMEOUT = 45, 30
        Resource.objects.filter(pk=pending.pk).update(tags={"simulate": "flaky"})
        with pytest.raises(TransientProviderError):  # called directly, the retry re-raises its error
            provision_resource(pending.pk)  # the first attempt fails: retried in 45 s
        claimed = reload(pending)
        assert claimed.status == ResourceStatus.PROVISIONING and claimed.lifecycle_task_id
        assert claimed.heartbeat_at > timezone.now() + timedelta(seconds=40)
        assert reap_stuck_resources.apply().get() == {"requeued": 0, "failed": 0}

    def test_unclaimed_work_waits_while_the_outbox_cannot_send(self, pending, settings):
        settings.ELBIA_STUCK_AFTER = 60
        self.age(pending, ResourceStatus.PENDING, 61)
        OutboxMessage.objects.create(
            task_name="resources.tasks.provision_resource",
            args=[pending.pk],
            created_at=timezone.now() - timedelta(seconds=61),
        )
        assert reap_stuck_resources.apply().get() == {"requeued": 0, "failed": 0}  # the broker is down: it is queued
        OutboxMessage.objects.update(sent_at=timezone.now())
        assert reap_stuck_resources.apply().get() == {"requeued": 1, "failed": 0}  # sent, then lost


@pytest.mark.django_db(transaction=True)
def test_a_working_task_touches_its_claim(settings, account):
    """The heartbeat thread (its own connection) says the step is alive while the provider works."""
    settings.ELBIA_PROVISION_DELAY, settings.ELBIA_HEARTBEAT_INTERVAL = 0.6, 0.1
    resource = ComputeFactory(account=account, status=ResourceStatus.PENDING)
    started = timezone.now()
    assert provision_resource.apply(args=[resource.pk]).get() == "done"
    heartbeat = reload(resource).heartbeat_at
    assert heartbeat - started >= timedelta(seconds=0.4)  # touched near the end of the work, not only at the claim
