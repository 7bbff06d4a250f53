"""Invoking functions: run one now and wait for it, or queue it; record the outcome and meter it.

An invocation runs on the configured provider when it runs functions itself (AWS Lambda's ``Invoke``),
else on Elbia's local runtime (``functions.runtime``, the ``runtime`` process), never in a web or worker
process. While it runs it holds a concurrency slot (``functions.concurrency``). Its outcome and its usage
event (``event_id`` = the invocation's public id, the billed duration, its memory) are stored in one
transaction through ``billing.services.usage_record_events``, the path ``POST /v1/usage/events`` takes:
metering is exactly once whoever records it, however often. This is the one place the functions app
writes through billing (billing reads functions everywhere else): metering belongs to billing, and an
execution's record must not exist without its charge.
"""

import json
import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from billing.services import UsageEventInput, usage_record_events
from elbia.accounts.models import Account
from elbia.errors import Conflict, Unavailable
from elbia.outbox import enqueue
from elbia.providers import ProviderError, TransientProviderError, get_provider
from elbia.providers.base import InvokeResult
from functions import concurrency
from functions.models import Function, FunctionStatus, Invocation, InvocationStatus, InvocationType
from functions.runtime.environments import LOG_TAIL_BYTES, Outcome, billed, ensure_local
from functions.runtime.runner import runtime_invoke

logger = logging.getLogger(__name__)

LOST = "The request that ran it ended before its outcome was recorded (its web process was stopped); not metered."


def _ensure_invocable(function: Function) -> None:
    """409 unless the function is active and something can run its runtime."""
    if function.status != FunctionStatus.ACTIVE:
        raise Conflict(f"Function {function.public_id} is {function.status}: only an active function can be invoked.")
    if not get_provider().runs_functions:
        ensure_local(function.runtime)


def _run(function: Function, event: bytes, request_id: str) -> Outcome:
    """Run the function once on the provider, or on the local runtime when the provider does not run functions."""
    provider = get_provider()
    if not provider.runs_functions:
        return runtime_invoke(function, event, request_id)
    try:
        answer = provider.invoke(function, event, request_id)
    except (ProviderError, TransientProviderError) as error:
        raise Unavailable(f"The provider could not run the function: {error}") from None
    return outcome_of(answer, request_id=request_id)


def outcome_of(answer: InvokeResult, *, request_id: str) -> Outcome:
    """A provider's answer as the local runtime's ``Outcome``: the value, or an error in Lambda's shape."""
    try:
        payload = json.loads(answer.payload) if answer.payload else None
    except ValueError:
        payload = answer.payload.decode(errors="replace")
    outcome = Outcome(
        ok=answer.function_error is None,
        duration_ms=answer.duration_ms,
        billed_duration_ms=billed(answer.duration_ms),
        log_tail=answer.log_tail.encode()[-LOG_TAIL_BYTES:].decode(errors="ignore"),
        cold=answer.init_duration_ms is not None,
        init_duration_ms=answer.init_duration_ms,
        request_id=request_id,
    )
    if outcome.ok:
        outcome.result = payload
    else:
        error = payload if isinstance(payload, dict) else {"errorMessage": "" if payload is None else str(payload)}
        outcome.error = {
            "errorType": str(error.get("errorType") or answer.function_error),
            "errorMessage": str(error.get("errorMessage", "")),
            "trace": error.get("trace") or error.get("stackTrace") or [],
        }
    return outcome


def _mark_running(invocation: Invocation, function: Function, *, in_redis: bool) -> None:
    """Make the invocation running with a lease (counting the database's slots first when Redis does not)."""
    if not in_redis:
        concurrency.acquire_in_database(function)
    invocation.status = InvocationStatus.RUNNING
    invocation.started_at = timezone.now()
    invocation.lease_expires_at = concurrency.lease_expiry(function, invocation.started_at)


def invocation_invoke(*, account: Account, function: Function, event: bytes) -> Invocation:
    """Run ``function`` on ``event`` (JSON bytes) and wait for the outcome, stored and metered.

    ``Conflict`` when it is not active or its runtime runs only on AWS, ``LimitReached`` over a
    concurrency limit, ``Unavailable`` when nothing could run it (no invocation is left behind then).
    """
    _ensure_invocable(function)
    lease_id = uuid.uuid4().hex
    in_redis = concurrency.acquire(function, lease_id)
    invocation = Invocation(
        account=account,
        function=function,
        invocation_type=InvocationType.REQUEST_RESPONSE,
        memory_mb=function.memory_mb,
    )
    try:
        with transaction.atomic():
            _mark_running(invocation, function, in_redis=in_redis)
            invocation.save()
        try:
            outcome = _run(function, event, invocation.public_id)
        except BaseException:
            Invocation.objects.filter(pk=invocation.pk).delete()
            raise
    finally:
        if in_redis:
            concurrency.release(function, lease_id)
    return invocation_complete(invocation=invocation, outcome=outcome)


@transaction.atomic
def invocation_complete(*, invocation: Invocation, outcome: Outcome) -> Invocation:
    """Store the outcome and record its usage event, together: the invocation is metered exactly once."""
    invocation.status = InvocationStatus.SUCCEEDED if outcome.ok else InvocationStatus.FAILED
    invocation.result = outcome.result if outcome.ok else None
    invocation.error = None if outcome.ok else outcome.error
    invocation.log_tail = outcome.log_tail
    invocation.duration_ms = outcome.duration_ms
    invocation.billed_duration_ms = outcome.billed_duration_ms
    invocation.init_duration_ms = outcome.init_duration_ms
    invocation.cold = outcome.cold
    invocation.finished_at = timezone.now()
    invocation.lease_expires_at = None
    invocation.event = None
    invocation.save(
        update_fields=[
            "status", "result", "error", "log_tail", "duration_ms", "billed_duration_ms", "init_duration_ms",
            "cold", "finished_at", "lease_expires_at", "event",
        ]
    )  # fmt: skip
    usage_record_events(
        account=invocation.account,
        events=[
            UsageEventInput(
                event_id=invocation.public_id,
                function=invocation.function.public_id,
                timestamp=invocation.started_at,
                duration_ms=outcome.billed_duration_ms,
                memory_mb=invocation.memory_mb,
            )
        ],
        now=invocation.finished_at,
    )
    return invocation


@transaction.atomic
def invocation_queue(*, account: Account, function: Function, event: bytes) -> Invocation:
    """Queue ``function``'s run on ``event`` for the invocations worker; ``Conflict`` as ``invocation_invoke``."""
    _ensure_invocable(function)
    invocation = Invocation(
        account=account,
        function=function,
        invocation_type=InvocationType.EVENT,
        status=InvocationStatus.QUEUED,
        event=event,
        memory_mb=function.memory_mb,
    )
    invocation.save()
    enqueue("functions.tasks.run_invocation", invocation.pk)
    return invocation


def invocation_run_queued(*, invocation_id: int) -> Invocation | None:
    """Run a queued invocation (the task's body): claim it, take a slot, run it, store and meter the outcome.

    Nothing to do (``None``) when it is done or another worker runs it; a running one whose lease expired
    (its worker died) is run again, metered once all the same. ``LimitReached`` (no slot) and
    ``Unavailable`` (nothing could run it) leave it queued for the task to retry. A function no longer
    active fails it, unmetered.
    """
    lease_id = None
    with transaction.atomic():
        invocation = (
            Invocation.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("function", "account")
            .filter(pk=invocation_id)
            .filter(
                Q(status=InvocationStatus.QUEUED)
                | Q(status=InvocationStatus.RUNNING, lease_expires_at__lte=timezone.now())
            )
            .first()
        )
        if invocation is None:
            return None
        function = invocation.function
        if function.status != FunctionStatus.ACTIVE:
            return invocation_fail(
                invocation=invocation,
                error_type="Function.NotActive",
                message=f"Function {function.public_id} was {function.status} when its turn came.",
            )
        lease_id = invocation.public_id
        in_redis = concurrency.acquire(function, lease_id)
        _mark_running(invocation, function, in_redis=in_redis)
        invocation.save(update_fields=["status", "started_at", "lease_expires_at"])
    try:
        outcome = _run(function, bytes(invocation.event or b"{}"), invocation.public_id)
    except BaseException:
        Invocation.objects.filter(pk=invocation.pk).update(status=InvocationStatus.QUEUED, lease_expires_at=None)
        raise
    finally:
        if in_redis:
            concurrency.release(function, lease_id)
    return invocation_complete(invocation=invocation, outcome=outcome)


@transaction.atomic
def invocation_fail(*, invocation: Invocation, error_type: str, message: str) -> Invocation:
    """End an invocation that could not run (nothing ran: nothing is metered)."""
    invocation.status = InvocationStatus.FAILED
    invocation.error = {"errorType": error_type, "errorMessage": message, "trace": []}
    invocation.finished_at = timezone.now()
    invocation.lease_expires_at = None
    invocation.event = None
    invocation.save(update_fields=["status", "error", "finished_at", "lease_expires_at", "event"])
    return invocation


def invocation_fail_by_id(*, invocation_id: int, error_type: str, message: str) -> Invocation | None:
    """Fail a queued invocation that could not be run after its retries (``None`` if it is no longer queued)."""
    with transaction.atomic():
        invocation = (
            Invocation.objects.select_for_update(of=("self",))
            .filter(pk=invocation_id, status=InvocationStatus.QUEUED)
            .first()
        )
        return (
            None
            if invocation is None
            else invocation_fail(invocation=invocation, error_type=error_type, message=message)
        )


def invocations_purge_expired(*, now: datetime | None = None) -> int:
    """Delete invocations older than ``ELBIA_INVOCATION_RETENTION_DAYS`` (7); returns how many.

    Also ends the synchronous invocations whose request ended without recording them (a web worker
    stopped mid-run: their lease expired): failed, ``Invocation.Lost``, unmetered (nobody got the answer).
    """
    now = now or timezone.now()
    Invocation.objects.filter(
        invocation_type=InvocationType.REQUEST_RESPONSE, status=InvocationStatus.RUNNING, lease_expires_at__lte=now
    ).update(
        status=InvocationStatus.FAILED,
        error={"errorType": "Invocation.Lost", "errorMessage": LOST, "trace": []},
        finished_at=now,
        lease_expires_at=None,
    )
    cutoff = now - timedelta(days=settings.ELBIA_INVOCATION_RETENTION_DAYS)
    deleted, _ = Invocation.objects.filter(created_at__lt=cutoff).delete()
    return deleted
