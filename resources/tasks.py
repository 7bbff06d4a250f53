"""Lifecycle work for resources, done by Celery workers through the configured provider.

Every task takes a resource id, loads the row under ``select_for_update`` and
checks that its status still calls for the work. The row then records which
message owns the step (``lifecycle_task_id``): a duplicate message, or the same
task run twice, finds the step owned or already done and does nothing. The
provider call itself runs outside any lock, so reads and PATCHes never wait for
a slow cloud.

- ``provision_resource``: pending -> provisioning -> active, or failed with a reason.
- ``deprovision_resource``: deleting -> deleted, or failed with a reason.
- ``reap_stuck_resources`` (every minute, Celery beat): a resource left in a transient
  status longer than ``ELBIA_STUCK_AFTER`` (its worker died, its message was lost) is
  requeued, and failed after ``ELBIA_STUCK_REQUEUES`` requeues. ``ELBIA_STUCK_AFTER``
  must exceed the task hard time limit, so a requeued step's first owner is surely gone.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from resources.models import TRANSIENT_STATUSES, Resource, ResourceStatus
from resources.providers import ProviderError, TransientProviderError, get_provider

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300
REAP_BATCH = 500
MAX_REASON = 1000


@dataclass(frozen=True)
class Step:
    """One lifecycle step: the statuses it starts from, the status it works in, the one it ends in."""

    name: str
    starts_from: tuple[str, ...]
    working: str
    done: str
    done_at: str


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
STEPS = {step.name: step for step in (PROVISION, DEPROVISION)}

_LIFECYCLE_FIELDS = ["status", "lifecycle_task_id", "failure_reason", "failed_at", "requeue_count", "updated_at"]


class VpcNotReady(Exception):
    """The resource's VPC is still being provisioned: try again shortly."""


def backoff(retries: int) -> float:
    """Seconds before retry number ``retries + 1``: ELBIA_RETRY_BACKOFF * 2**retries, capped."""
    return min(settings.ELBIA_RETRY_BACKOFF * 2**retries, MAX_BACKOFF_SECONDS)


def _fail(resource: Resource, reason: str) -> None:
    resource.status = ResourceStatus.FAILED
    resource.failure_reason = reason[:MAX_REASON]
    resource.failed_at = timezone.now()
    resource.lifecycle_task_id = ""
    resource.save(update_fields=_LIFECYCLE_FIELDS)


def record_failure(resource_id: int, step: Step, task_id: str, reason: str) -> bool:
    """Mark the resource failed with ``reason`` if the step is still in progress and not owned by another task."""
    with transaction.atomic():
        resource = Resource.objects.select_for_update().filter(pk=resource_id).first()
        if resource is None or resource.status not in step.starts_from:
            return False
        if resource.lifecycle_task_id not in ("", task_id):
            return False
        _fail(resource, reason)
    logger.warning("Resource %s: %s failed: %s", resource.public_id, step.name, reason)
    return True


class LifecycleTask(Task):
    """Base of the lifecycle tasks: late acknowledgement, and a failure handler that records ``failed``."""

    acks_late = True
    reject_on_worker_lost = True
    step_name = ""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        step = STEPS[self.step_name]
        if isinstance(exc, TransientProviderError):
            reason = f"{exc} (gave up after {settings.ELBIA_PROVIDER_MAX_RETRIES + 1} attempts)"
        elif isinstance(exc, SoftTimeLimitExceeded):
            reason = f"The provider did not finish {step.name} in time."
        else:
            reason = f"Internal error during {step.name}; the team has been notified."
        resource_id = args[0] if args else kwargs.get("resource_id")
        record_failure(resource_id, step, task_id, reason)


def _claim(resource_id: int, step: Step, task_id: str) -> Resource | None:
    """Take ownership of the step for ``task_id``; ``None`` when there is nothing (left) for it to do."""
    with transaction.atomic():
        resource = Resource.objects.select_for_update().filter(pk=resource_id).first()
        if resource is None or resource.status not in step.starts_from:
            return None
        if resource.lifecycle_task_id not in ("", task_id):
            return None  # another message owns this step
        if step is PROVISION and resource.vpc_id is not None:
            vpc_status = Resource.objects.filter(pk=resource.vpc_id).values_list("status", flat=True).first()
            if vpc_status in (ResourceStatus.PENDING, ResourceStatus.PROVISIONING):
                raise VpcNotReady()
            if vpc_status != ResourceStatus.ACTIVE:
                _fail(resource, f"Its VPC is {vpc_status}.")
                return None
        resource.status = step.working
        resource.lifecycle_task_id = task_id
        resource.save(update_fields=["status", "lifecycle_task_id", "updated_at"])
        return resource


def _complete(resource_id: int, step: Step, task_id: str) -> bool:
    with transaction.atomic():
        resource = Resource.objects.select_for_update().filter(pk=resource_id).first()
        if resource is None or resource.status != step.working or resource.lifecycle_task_id != task_id:
            return False  # the reaper handed the step to another message meanwhile
        resource.status = step.done
        setattr(resource, step.done_at, timezone.now())
        resource.lifecycle_task_id = ""
        resource.requeue_count = 0
        resource.save(update_fields=["status", step.done_at, "lifecycle_task_id", "requeue_count", "updated_at"])
    logger.info("Resource %s: %s done, now %s", resource.public_id, step.name, step.done)
    return True


def _run(task: Task, resource_id: int, step: Step, work) -> str:
    task_id = task.request.id or f"local-{uuid.uuid4()}"
    try:
        resource = _claim(resource_id, step, task_id)
    except VpcNotReady:
        raise task.retry(countdown=max(settings.ELBIA_PROVISION_DELAY, 0.5), max_retries=None) from None
    if resource is None:
        return "nothing to do"
    try:
        work(resource)
    except ProviderError as error:
        record_failure(resource_id, step, task_id, str(error) or f"The provider refused the {step.name}.")
        return "failed"
    except TransientProviderError as error:
        if task.request.retries >= settings.ELBIA_PROVIDER_MAX_RETRIES:
            raise  # on_failure records it
        logger.info("Resource %s: transient error during %s, retrying: %s", resource.public_id, step.name, error)
        raise task.retry(exc=error, countdown=backoff(task.request.retries), max_retries=None) from None
    return "done" if _complete(resource_id, step, task_id) else "superseded"


@shared_task(bind=True, base=LifecycleTask, step_name=PROVISION.name)
def provision_resource(self, resource_id: int) -> str:
    """Provision a pending resource: pending -> provisioning -> active (or failed)."""
    return _run(self, resource_id, PROVISION, lambda resource: get_provider().provision(resource))


@shared_task(bind=True, base=LifecycleTask, step_name=DEPROVISION.name)
def deprovision_resource(self, resource_id: int) -> str:
    """Tear a deleting resource down: deleting -> deleted (or failed)."""
    return _run(self, resource_id, DEPROVISION, lambda resource: get_provider().deprovision(resource))


TASKS_BY_STATUS = {
    ResourceStatus.PENDING: provision_resource,
    ResourceStatus.PROVISIONING: provision_resource,
    ResourceStatus.DELETING: deprovision_resource,
}


def _reap(resource_id: int, cutoff) -> str | None:
    with transaction.atomic():
        resource = (
            Resource.objects.select_for_update(skip_locked=True)  # a concurrent reaper already has it
            .filter(pk=resource_id, status__in=TRANSIENT_STATUSES, updated_at__lt=cutoff)
            .first()
        )
        if resource is None:
            return None
        if resource.requeue_count >= settings.ELBIA_STUCK_REQUEUES:
            step = DEPROVISION if resource.status == ResourceStatus.DELETING else PROVISION
            _fail(
                resource,
                f"The {step.name} did not finish after {resource.requeue_count + 1} attempts "
                f"of {int(settings.ELBIA_STUCK_AFTER)} seconds each.",
            )
            return "failed"
        resource.requeue_count += 1
        resource.lifecycle_task_id = ""  # the next message to arrive owns the step
        resource.save(update_fields=["requeue_count", "lifecycle_task_id", "updated_at"])
        transaction.on_commit(partial(TASKS_BY_STATUS[resource.status].delay, resource.pk), robust=True)
        return "requeued"


@shared_task(acks_late=True)
def reap_stuck_resources() -> dict[str, int]:
    """Requeue resources stuck in a transient status for longer than ELBIA_STUCK_AFTER; fail the hopeless ones."""
    cutoff = timezone.now() - timedelta(seconds=settings.ELBIA_STUCK_AFTER)
    stuck = list(
        Resource.objects.filter(status__in=TRANSIENT_STATUSES, updated_at__lt=cutoff)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:REAP_BATCH]
    )
    outcome = {"requeued": 0, "failed": 0}
    for resource_id in stuck:
        result = _reap(resource_id, cutoff)
        if result:
            outcome[result] += 1
    if any(outcome.values()):
        logger.warning("Reaper: %s", outcome)
    return outcome
