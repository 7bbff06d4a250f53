"""Lifecycle work for resources, done by Celery workers through the configured provider.

The claim / work / complete discipline, retries, failure recording and the reaper are
``elbia.lifecycle``'s, shared with the functions app; this module names the steps.

- ``provision_resource``: pending -> provisioning -> active, or failed with a reason. A resource
  waits (retrying shortly) while its VPC is still being provisioned, and fails if the VPC did.
- ``deprovision_resource``: deleting -> deleted, or failed with a reason.
- ``reap_stuck_resources`` (every minute, Celery beat): a resource left in a transient status longer
  than ``ELBIA_STUCK_AFTER`` is requeued, and failed after ``ELBIA_STUCK_REQUEUES`` requeues.
"""

from celery import shared_task

from elbia.lifecycle import Lifecycle, LifecycleTask, NotReady, Step, StepFailed
from elbia.providers import get_provider
from resources.models import Resource, ResourceStatus

PROVISION = Step(
    "provisioning",
    (ResourceStatus.PENDING, ResourceStatus.PROVISIONING),
    ResourceStatus.PROVISIONING,
    ResourceStatus.ACTIVE,
    "provisioned_at",
)
DEPROVISION = Step(
    "deletion", (ResourceStatus.DELETING,), ResourceStatus.DELETING, ResourceStatus.DELETED, "deleted_at"
)
RESOURCES = Lifecycle(
    model=Resource, failed=ResourceStatus.FAILED, failed_at="failed_at", steps=(PROVISION, DEPROVISION)
)


def _vpc_is_ready(resource: Resource) -> None:
    """A resource in a VPC is provisioned once the VPC is active; it fails if the VPC did not make it."""
    if resource.vpc_id is None:
        return
    vpc_status = Resource.objects.filter(pk=resource.vpc_id).values_list("status", flat=True).first()
    if vpc_status in (ResourceStatus.PENDING, ResourceStatus.PROVISIONING):
        raise NotReady()
    if vpc_status != ResourceStatus.ACTIVE:
        raise StepFailed(f"Its VPC is {vpc_status}.")


@RESOURCES.task(PROVISION, check=_vpc_is_ready)
@shared_task(bind=True, base=LifecycleTask, lifecycle=RESOURCES, step_name=PROVISION.name)
def provision_resource(self, resource_id: int) -> str:
    """Provision a pending resource: pending -> provisioning -> active (or failed)."""
    return RESOURCES.run(self, resource_id, PROVISION, lambda resource: get_provider().provision(resource))


@RESOURCES.task(DEPROVISION)
@shared_task(bind=True, base=LifecycleTask, lifecycle=RESOURCES, step_name=DEPROVISION.name)
def deprovision_resource(self, resource_id: int) -> str:
    """Tear a deleting resource down: deleting -> deleted (or failed)."""
    return RESOURCES.run(self, resource_id, DEPROVISION, lambda resource: get_provider().deprovision(resource))


@shared_task(acks_late=True)
def reap_stuck_resources() -> dict[str, int]:
    """Requeue resources stuck in a transient status for longer than ELBIA_STUCK_AFTER; fail the hopeless ones."""
    return RESOURCES.reap()
