"""Deployment and deletion of functions, done by Celery workers through the configured provider.

The claim / work / complete discipline, retries, failure recording and the reaper are
``elbia.lifecycle``'s, as for resources. A function runs on its own resource, which the resources
app provisions and tears down; these tasks follow it:

- ``deploy_function``: created (or deploying, after a configuration change) -> deploying -> active, or
  failed with a reason. It waits (retrying shortly, in ``created``) until the function's resource is
  active, and fails if the resource failed; then the provider deploys the code and configuration.
- ``delete_function``: deleting -> deleted once the function's resource is deleted (the service sent it
  to ``deleting``), or failed with the reason if tearing the resource down failed.
- ``reap_stuck_functions`` (every minute, Celery beat): a function left in a transient status longer than
  ``ELBIA_STUCK_AFTER`` is requeued, and failed after ``ELBIA_STUCK_REQUEUES`` requeues.
- ``run_invocation`` (the ``invocations`` queue): runs a queued invocation (``functions.invocations``).
- ``purge_expired_invocations`` (hourly): deletes invocations older than 7 days.
- ``detect_function_drift`` (every five minutes): an active function that the provider no longer reports is
  failed, with its resource, with a reason saying so (``elbia.drift``).
"""

from celery import shared_task
from django.conf import settings

from elbia import drift
from elbia.errors import LimitReached, Unavailable
from elbia.lifecycle import Lifecycle, LifecycleTask, NotReady, Step, StepFailed
from elbia.providers import get_provider
from functions.code import CodeUnavailable
from functions.invocations import invocation_fail_by_id, invocation_run_queued, invocations_purge_expired
from functions.models import Function, FunctionStatus
from functions.services import function_fail_drifted
from resources.models import Resource, ResourceStatus
from resources.services import resource_record_provider_id

DEPLOY = Step(
    "deployment",
    (FunctionStatus.CREATED, FunctionStatus.DEPLOYING),
    FunctionStatus.DEPLOYING,
    FunctionStatus.ACTIVE,
    "deployed_at",
    started_at="deployment_started",
)
DELETE = Step("deletion", (FunctionStatus.DELETING,), FunctionStatus.DELETING, FunctionStatus.DELETED, "deleted_at")
FUNCTIONS = Lifecycle(model=Function, failed=FunctionStatus.FAILED, failed_at="failed_at", steps=(DEPLOY, DELETE))


def _resource_state(function: Function) -> tuple[str, str, str] | None:
    """Public ID, status and failure reason of the function's resource (``None`` without one)."""
    if function.resource_id is None:
        return None
    return Resource.objects.filter(pk=function.resource_id).values_list("public_id", "status", "failure_reason").get()


def _resource_is_active(function: Function) -> None:
    """A function is deployed once its resource is active; it fails if the resource did not make it."""
    state = _resource_state(function)
    if state is None:
        return
    public_id, status, reason = state
    if status in (ResourceStatus.PENDING, ResourceStatus.PROVISIONING):
        raise NotReady()
    if status != ResourceStatus.ACTIVE:
        raise StepFailed(f"Its resource {public_id} is {status}" + (f": {reason}" if reason else "."))


def _resource_is_deleted(function: Function) -> None:
    """The deletion is done when the resource is deleted; it failed if the resource's teardown did."""
    state = _resource_state(function)
    if state is None:
        return
    public_id, status, reason = state
    if status == ResourceStatus.DELETED:
        return
    if status == ResourceStatus.FAILED:
        raise StepFailed(f"Tearing down its resource {public_id} failed: {reason}")
    raise NotReady()


def _deploy(function: Function) -> None:
    """The provider deploys the function; its resource then shows the provider's id of it too."""
    try:
        get_provider().deploy_function(function)
    except CodeUnavailable as error:
        raise StepFailed(str(error)) from None
    if function.provider_id and function.resource_id is not None:
        resource_record_provider_id(resource=function.resource, provider_id=function.provider_id)


@FUNCTIONS.task(DEPLOY, check=_resource_is_active)
@shared_task(bind=True, base=LifecycleTask, lifecycle=FUNCTIONS, step_name=DEPLOY.name)
def deploy_function(self, function_id: int, looks: int = 0) -> str:
    """Deploy a function: created -> deploying -> active (or failed)."""
    return FUNCTIONS.run(self, function_id, DEPLOY, _deploy, looks=looks)


@FUNCTIONS.task(DELETE)
@shared_task(bind=True, base=LifecycleTask, lifecycle=FUNCTIONS, step_name=DELETE.name)
def delete_function(self, function_id: int, looks: int = 0) -> str:
    """Finish deleting a function once its resource is gone: deleting -> deleted (or failed)."""
    return FUNCTIONS.run(self, function_id, DELETE, _resource_is_deleted, looks=looks)


@shared_task(acks_late=True)
def reap_stuck_functions() -> dict[str, int]:
    """Requeue functions stuck in a transient status for longer than ELBIA_STUCK_AFTER; fail the hopeless ones."""
    return FUNCTIONS.reap()


@shared_task(acks_late=True)
def detect_function_drift() -> int:
    """Fail active functions (and their resources) whose provider function went away outside Elbia."""
    return drift.check(
        kind="function",
        noun="Lambda function",
        rows=Function.objects.filter(status=FunctionStatus.ACTIVE),
        done_at="deployed_at",
        fail=lambda ids, reason: function_fail_drifted(function_ids=ids, reason=reason),
    )


@shared_task(bind=True, acks_late=True, max_retries=None)
def run_invocation(self, invocation_id: int, attempts: int = 0) -> str:
    """Run a queued invocation (``X-Elbia-Invocation-Type: Event``) on the invocations queue.

    Over a concurrency limit it waits its turn (retried a second later, as long as it takes); when nothing
    can run it (the runner down) it is retried with backoff ``ELBIA_PROVIDER_MAX_RETRIES`` times, then failed.
    """
    try:
        invocation = invocation_run_queued(invocation_id=invocation_id)
    except LimitReached as refusal:
        raise self.retry(args=(invocation_id, attempts), countdown=refusal.retry_after) from None
    except Unavailable as error:
        if attempts >= settings.ELBIA_PROVIDER_MAX_RETRIES:
            invocation_fail_by_id(invocation_id=invocation_id, error_type="Runtime.Unavailable", message=str(error))
            return "failed"
        backoff = min(settings.ELBIA_RETRY_BACKOFF * 2**attempts, settings.ELBIA_RETRY_BACKOFF_MAX)
        raise self.retry(args=(invocation_id, attempts + 1), countdown=backoff) from None
    return "skipped" if invocation is None else invocation.status


@shared_task(acks_late=True)
def purge_expired_invocations() -> int:
    """Delete invocations past their retention (7 days); end the synchronous ones whose request died."""
    return invocations_purge_expired()
