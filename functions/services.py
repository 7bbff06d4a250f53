"""Writes for functions: the API, the dashboard, the admin and the tasks all call these.

A function runs on its own resource (``type=function``), which the resources app provisions and tears
down (``resources.services``). A service validates, writes the rows and queues the Celery task with
``elbia.outbox.enqueue`` (ids only); the task does the slow work (``functions.tasks``). Validation
problems are Django ``ValidationError``s keyed by field (400 ``invalid_request``); state conflicts are
409s. ``FunctionTag`` rows mirror ``Function.tags`` and are rewritten here whenever the tags change.
"""

import logging
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from elbia.accounts.models import Account
from elbia.errors import Conflict
from elbia.outbox import enqueue
from functions.code import CodeUnavailable, archive_handler_problem, check_archive, code_read, code_store
from functions.models import Function, FunctionStatus, FunctionTag
from functions.runtimes import RUNTIMES, runtime_name
from functions.starters import starter_archive
from functions.validators import validate_current_runtime
from resources.models import ResourceStatus
from resources.services import (
    resource_create_for_function,
    resource_delete,
    resource_fail_drifted,
    resource_resize_for_function,
    resource_retry_provisioning,
)

#: Changing any of these redeploys the function.
CONFIG_FIELDS = ("handler", "memory_mb", "timeout_s", "environment")

_UNSET: Any = object()

logger = logging.getLogger(__name__)


def _queue(task_name: str, function: Function) -> None:
    enqueue(f"functions.tasks.{task_name}", function.pk)


def _name_taken(*, account: Account, name: str) -> bool:
    return Function.objects.for_account(account).filter(name=name).exclude(status=FunctionStatus.DELETED).exists()


def _name_conflict(name: str) -> Conflict:
    return Conflict(f"A function named '{name}' already exists in this account.")


def _clean(function: Function, *, extra: dict[str, list[str]] | None = None) -> None:
    """Validate every field (uniqueness is left to the database's constraints), reporting all problems at once."""
    errors: dict[str, list[str]] = dict(extra or {})
    try:
        function.full_clean(exclude=["account", "resource"], validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            errors.setdefault(field, messages)
    if errors:
        raise ValidationError(errors)


def _code_problems(archive: bytes | None, *, runtime: str, handler: str) -> list[str]:
    """What is wrong with ``archive`` as the code of ``handler`` on ``runtime`` (nothing to say while those are bad)."""
    if archive is None or runtime not in RUNTIMES or not RUNTIMES[runtime].handler_is_valid(handler):
        return []
    try:
        check_archive(archive, runtime=runtime, handler=handler)
    except ValidationError as error:
        return error.messages
    return []


def function_sync_tags(*, function: Function) -> None:
    """Make the function's ``FunctionTag`` rows exactly its ``tags`` (two queries, whatever was there before)."""
    FunctionTag.objects.filter(function=function).exclude(tag__in=function.tags).delete()
    FunctionTag.objects.bulk_create(
        [FunctionTag(account_id=function.account_id, function=function, tag=tag) for tag in function.tags],
        ignore_conflicts=True,
    )


@transaction.atomic
def function_create(
    *,
    account: Account,
    name: str,
    runtime: str,
    handler: str,
    memory_mb: int = 128,
    timeout_s: int = 3,
    region: str = "us-east-1",
    tags: list[str] | None = None,
    environment: dict[str, str] | None = None,
    code: bytes | None = None,
) -> Function:
    """Create a function (``created``) with its code and its resource (``pending``), and queue the deployment.

    ``code`` is a ZIP archive (checked as ``functions.code.check_archive`` says; problems are reported
    under ``code``); without it the function gets its runtime's starter code (``functions.starters``),
    or no code on .NET and Go, which have no starter.

    The resource's provisioning and the function's deployment are queued when the transaction commits;
    the deployment waits for the resource to be active. Names are unique among the account's live
    functions (409). ``deployment_started`` is the moment the deployment was requested. ``runtime`` may
    be the catalog's name or the runtime's identifier; the function keeps the name.
    """
    now = timezone.now()
    function = Function(
        account=account,
        name=name,
        runtime=runtime_name(runtime),
        handler=handler,
        memory_mb=memory_mb,
        timeout_s=timeout_s,
        region=region,
        tags=list(tags or []),
        environment=dict(environment or {}),
        status=FunctionStatus.CREATED,
        created_at=now,
        deployment_started=now,
    )
    runtime_errors: dict[str, list[str]] = {}
    try:
        validate_current_runtime(runtime)
    except ValidationError as error:
        runtime_errors["runtime"] = error.messages
    code_errors = _code_problems(code, runtime=function.runtime, handler=handler)
    _clean(function, extra={**runtime_errors, **({"code": code_errors} if code_errors else {})})
    if _name_taken(account=account, name=name):
        raise _name_conflict(name)
    archive = code if code is not None else starter_archive(function.runtime, handler)
    if archive is not None:
        function.code_sha256, function.code_size = code_store(archive)
    function.resource = resource_create_for_function(account=account, region=region, memory_mb=memory_mb, name=name)
    try:
        function.save()  # in a savepoint (PublicIdModel.save): a concurrent twin surfaces as IntegrityError
    except IntegrityError:
        if _name_taken(account=account, name=name):
            raise _name_conflict(name) from None
        raise
    FunctionTag.objects.bulk_create(  # a new function has no tag rows yet
        [FunctionTag(account_id=function.account_id, function=function, tag=tag) for tag in function.tags]
    )
    _queue("deploy_function", function)
    return function


def _restart(function: Function, status: str, *, deploy: bool) -> list[str]:
    """Send ``function`` to ``status`` with a clean slate for the step's worker; the fields to save.

    Clears the last failure and the claim, so the message queued next claims the step afresh; a
    deployment also gets a new ``deployment_started``.
    """
    function.status = status
    function.failure_reason = ""
    function.failed_at = None
    function.drifted_at = None
    function.lifecycle_task_id = ""
    function.requeue_count = 0
    fields = ["status", "failure_reason", "failed_at", "drifted_at", "lifecycle_task_id", "requeue_count"]
    if deploy:
        function.deployment_started = timezone.now()
        fields.append("deployment_started")
    return fields


def _merge_environment(current: dict[str, str], patch: dict[str, str | None]) -> dict[str, str]:
    """``patch`` applied to ``current`` as a JSON merge patch: a string sets a variable, ``None`` removes it."""
    merged = dict(current)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _ensure_not_deleted(function: Function) -> None:
    if function.status in (FunctionStatus.DELETING, FunctionStatus.DELETED):
        raise Conflict(f"Function {function.public_id} is {function.status}.")


def _ensure_redeployable(function: Function, what: str) -> None:
    """409 unless ``function`` is active or failed, the states a change that redeploys starts from."""
    if function.status in (FunctionStatus.CREATED, FunctionStatus.DEPLOYING):
        raise Conflict(
            f"Function {function.public_id} is still {function.status}; change its {what} once it is active or failed."
        )
    if function.status == FunctionStatus.DEPRECATED:
        raise Conflict(f"Function {function.public_id} is deprecated; its {what} can no longer change.")


def _handler_code_problems(function: Function) -> dict[str, list[str]]:
    """A new handler must be in the function's code (checked when the handler is valid and there is code)."""
    if not function.code_sha256 or not RUNTIMES[function.runtime].handler_is_valid(function.handler):
        return {}
    try:
        problem = archive_handler_problem(
            code_read(function.code_sha256), runtime=function.runtime, handler=function.handler
        )
    except CodeUnavailable as error:  # the deployment will fail saying so; the change itself is sound
        logger.warning("Function %s: the handler cannot be checked against its code: %s", function.public_id, error)
        return {}
    return {"handler": [problem + " Upload code that has it first."]} if problem else {}


def _refuse_status(status: str) -> None:
    if status != FunctionStatus.DEPRECATED:
        raise ValidationError({"status": ["Only 'deprecated' can be set: deprecate the function."]})


@transaction.atomic
def function_update(
    *,
    function: Function,
    handler: str = _UNSET,
    memory_mb: int = _UNSET,
    timeout_s: int = _UNSET,
    environment: dict[str, str | None] = _UNSET,
    tags: list[str] = _UNSET,
    status: str = _UNSET,
) -> Function:
    """Change a function's configuration (which redeploys it), replace its tags, or deprecate it.

    ``environment`` is a merge patch: a variable given a string is set, one given ``None`` is removed,
    the others stay (their values cannot be read back, so they cannot be resent). A configuration change
    needs an ``active`` or ``failed`` function (409 while it deploys, once deprecated or deleting): it goes
    back to ``deploying`` and a worker deploys the new configuration. ``status="deprecated"`` deprecates an
    active function (again: no change) and cannot be combined with configuration fields. Tags can change
    at any time until deletion; they are metadata and do not redeploy.
    """
    function = Function.objects.select_for_update().get(pk=function.pk)
    _ensure_not_deleted(function)
    requested = {"handler": handler, "memory_mb": memory_mb, "timeout_s": timeout_s, "environment": environment}
    requested = {field: value for field, value in requested.items() if value is not _UNSET}
    deprecate = status is not _UNSET
    if deprecate:
        _refuse_status(status)
        if requested:
            raise ValidationError(
                {"status": ["Deprecate a function in a request of its own, without configuration changes."]}
            )
    if "environment" in requested:
        requested["environment"] = _merge_environment(function.environment, requested["environment"])
    changes = {field: value for field, value in requested.items() if value != getattr(function, field)}
    fields = ["updated_at"]

    if changes:
        _ensure_redeployable(function, "configuration")
    if deprecate and function.status != FunctionStatus.DEPRECATED:
        if function.status != FunctionStatus.ACTIVE:
            raise Conflict(f"Only an active function can be deprecated; {function.public_id} is {function.status}.")
        function.status = FunctionStatus.DEPRECATED
        function.deprecated_at = timezone.now()
        fields += ["status", "deprecated_at"]

    tags_changed = tags is not _UNSET and tags != function.tags
    if tags_changed:
        function.tags = tags
        fields.append("tags")
    for field, value in changes.items():
        setattr(function, field, value)
        fields.append(field)
    _clean(function, extra=_handler_code_problems(function) if "handler" in changes else None)

    if "memory_mb" in changes and function.resource_id is not None:
        resource_resize_for_function(resource=function.resource, memory_mb=function.memory_mb)
    if changes:
        fields += _restart(function, FunctionStatus.DEPLOYING, deploy=True)
        _queue("deploy_function", function)
    function.save(update_fields=list(dict.fromkeys(fields)))
    if tags_changed:
        function_sync_tags(function=function)
    return function


def function_ensure_deletable(*, function: Function) -> None:
    """Raise ``Conflict`` saying why ``function`` cannot be deleted now (``function_delete``'s rules for the function;
    its resource is checked when the deletion is done)."""
    if function.status in (FunctionStatus.DELETING, FunctionStatus.DELETED):
        raise Conflict(f"Function {function.public_id} is already {function.status}.")
    if function.status in (FunctionStatus.CREATED, FunctionStatus.DEPLOYING):
        raise Conflict(
            f"Function {function.public_id} is still {function.status}; delete it once it is active or failed."
        )


@transaction.atomic
def function_update_code(*, function: Function, archive: bytes) -> Function:
    """Replace a function's code with ``archive`` (a ZIP) and redeploy it.

    The archive is checked first (``functions.code.check_archive``; problems are a ``ValidationError``
    under ``code``) and nothing changes when it is bad: the deployed code keeps running. Like a
    configuration change it needs an ``active`` or ``failed`` function (409 otherwise). The archive is
    stored once per content; the same code as the current one changes nothing and redeploys nothing.
    """
    function = Function.objects.select_for_update(of=("self",)).select_related("resource").get(pk=function.pk)
    _ensure_not_deleted(function)
    _ensure_redeployable(function, "code")
    try:
        check_archive(archive, runtime=function.runtime, handler=function.handler)
    except ValidationError as error:
        raise ValidationError({"code": error.messages}) from None
    sha256, size = code_store(archive)
    if sha256 == function.code_sha256:
        return function
    function.code_sha256, function.code_size = sha256, size
    fields = _restart(function, FunctionStatus.DEPLOYING, deploy=True)
    function.save(update_fields=[*fields, "code_sha256", "code_size", "updated_at"])
    _queue("deploy_function", function)
    return function


@transaction.atomic
def function_delete(*, function: Function) -> Function:
    """Start deleting a function (``deleting``) and its resource; 409 when it cannot be deleted now.

    An ``active``, ``failed`` or ``deprecated`` function can be deleted (not while it deploys). Its
    resource is sent to ``deleting`` in the same transaction; a worker marks the function ``deleted``
    once the resource is, or ``failed`` with the reason if tearing the resource down failed (then
    DELETE again retries).
    """
    function = Function.objects.select_for_update().get(pk=function.pk)
    function_ensure_deletable(function=function)
    resource = function.resource
    if resource is not None and resource.status not in (ResourceStatus.DELETING, ResourceStatus.DELETED):
        try:
            resource_delete(resource=resource, by_function=True)
        except Conflict:
            raise Conflict(
                f"The resource of function {function.public_id} ({resource.public_id}) is still {resource.status}; "
                "delete the function once it is active or failed."
            ) from None
    fields = _restart(function, FunctionStatus.DELETING, deploy=False)
    function.save(update_fields=[*fields, "updated_at"])
    _queue("delete_function", function)
    return function


@transaction.atomic
def function_retry_deploy(*, function: Function) -> Function:
    """Deploy a failed function again, unchanged (staff action); its resource is provisioned again first if it failed.

    Only a failed deployment is retried: a function that failed while being deleted (its resource's
    teardown failed) is deleted again instead (409). The function goes back to ``deploying`` with a new
    ``deployment_started`` and a cleared ``failure_reason``, and the deployment is queued; it waits for the
    resource to be active, as a first deployment does.
    """
    function = Function.objects.select_for_update().get(pk=function.pk)
    if function.status != FunctionStatus.FAILED:
        raise Conflict(f"Only failed functions can be retried; {function.public_id} is {function.status}.")
    resource = function.resource
    if resource is not None:
        if resource.deleting_started_at is not None or resource.status in (
            ResourceStatus.DELETING,
            ResourceStatus.DELETED,
        ):
            raise Conflict(
                f"Function {function.public_id} failed while being deleted (its resource {resource.public_id} "
                f"is {resource.status}); delete it again instead."
            )
        if resource.status == ResourceStatus.FAILED:
            resource_retry_provisioning(resource=resource)
    fields = _restart(function, FunctionStatus.DEPLOYING, deploy=True)
    function.save(update_fields=[*fields, "updated_at"])
    _queue("deploy_function", function)
    return function


@transaction.atomic
def function_fail_drifted(*, function_ids: Iterable[int], reason: str) -> int:
    """Fail the active functions among ``function_ids``, and their resources, with ``reason``: the provider's
    function changed or went away outside Elbia (the drift check). Rows no longer active are left alone."""
    drifted = dict(
        Function.objects.select_for_update()
        .filter(pk__in=list(function_ids), status=FunctionStatus.ACTIVE)
        .values_list("pk", "resource_id")
    )
    now = timezone.now()
    failed = Function.objects.filter(pk__in=list(drifted)).update(
        status=FunctionStatus.FAILED,
        failure_reason=reason,
        failed_at=now,
        drifted_at=now,
        lifecycle_task_id="",
        requeue_count=0,
        updated_at=now,
    )
    resource_fail_drifted(resource_ids=[pk for pk in drifted.values() if pk is not None], reason=reason)
    return failed
