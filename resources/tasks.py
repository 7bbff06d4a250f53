"""Lifecycle work for resources, done by Celery workers through the configured provider.

The claim / work / complete discipline, retries, failure recording and the reaper are
``elbia.lifecycle``'s, shared with the functions app; this module names the steps.

- ``provision_resource``: pending -> provisioning -> active, or failed with a reason. A resource
  waits (retrying shortly) while its VPC is still being provisioned, and fails if the VPC did.
- ``deprovision_resource``: deleting -> deleted, or failed with a reason.
- ``reap_stuck_resources`` (every minute, Celery beat): a resource left in a transient status longer
  than ``ELBIA_STUCK_AFTER`` is requeued, and failed after ``ELBIA_STUCK_REQUEUES`` requeues.
- ``detect_resource_drift`` (every five minutes): an active instance or VPC that the provider no longer
  reports, or reports changed (a stopped instance), is failed with a reason saying so (``elbia.drift``).
  A function's resource is checked with its function (``functions.tasks.detect_function_drift``).
"""

from celery import shared_task

from elbia import drift
from elbia.lifecycle import Lifecycle, LifecycleTask, NotReady, Step, StepFailed
from elbia.providers import get_provider
from resources.models import Resource, ResourceStatus, ResourceType
from resources.services import resource_fail_drifted

PROVISION = Step(
    "provisioning",
    (ResourceStatus.PENDING, ResourceStatus.PROVISIONING),
    ResourceStatus.PROVISIONING,
    ResourceStatus.ACTIVE,
    "provisioned_at",
    started_at="provisioning_started_at",
)
DEPROVISION = Step(
    "deletion",
    (ResourceStatus.DELETING,),
    ResourceStatus.DELETING,
    ResourceStatus.DELETED,
    "deleted_at",
    started_at="deleting_started_at",
)
RESOURCES = Lifecycle(
    model=Resource,
    failed=ResourceStatus.FAILED,
    failed_at="failed_at",
    steps=(PROVISION, DEPROVISION),
    claim_related=("vpc",),
)


def _vpc_is_ready(resource: Resource) -> None:
    """A resource in a VPC is provisioned once the VPC is active; it fails if the VPC did not make it."""
    if resource.vpc_id is None:
        return
    vpc_status = resource.vpc.status  # read with the resource (``claim_related``)
    if vpc_status in (ResourceStatus.PENDING, ResourceStatus.PROVISIONING):
        raise NotReady()
    if vpc_status != ResourceStatus.ACTIVE:
        raise StepFailed(f"Its VPC is {vpc_status}.")


@RESOURCES.task(PROVISION, check=_vpc_is_ready)
@shared_task(bind=True, base=LifecycleTask, lifecycle=RESOURCES, step_name=PROVISION.name)
def provision_resource(self, resource_id: int, looks: int = 0) -> str:
    """Provision a pending resource: pending -> provisioning -> active (or failed)."""
    return RESOURCES.run(self, resource_id, PROVISION, lambda resource: get_provider().provision(resource), looks=looks)


@RESOURCES.task(DEPROVISION)
@shared_task(bind=True, base=LifecycleTask, lifecycle=RESOURCES, step_name=DEPROVISION.name)
def deprovision_resource(self, resource_id: int, looks: int = 0) -> str:
    """Tear a deleting resource down: deleting -> deleted (or failed)."""
    return RESOURCES.run(
        self, resource_id, DEPROVISION, lambda resource: get_provider().deprovision(resource), looks=looks
    )


@shared_task(acks_late=True)
def reap_stuck_resources() -> dict[str, int]:
    """Requeue resources stuck in a transient status for longer than ELBIA_STUCK_AFTER; fail the hopeless ones."""
    return RESOURCES.reap()


#: What the drift check calls each kind of resource in its failure reasons.
DRIFT_NOUNS = {ResourceType.COMPUTE.value: "instance", ResourceType.VPC.value: "VPC"}


@shared_task(acks_late=True)
def detect_resource_drift() -> dict[str, int]:
    """Fail active instances and VPCs that changed or went away outside Elbia; how many of each kind."""
    return {
        kind: drift.check(
            kind=kind,
            noun=noun,
            rows=Resource.objects.filter(type=kind, status=ResourceStatus.ACTIVE),
            done_at="provisioned_at",
            fail=lambda ids, reason: resource_fail_drifted(resource_ids=ids, reason=reason),
        )
        for kind, noun in DRIFT_NOUNS.items()
    }
