"""The discipline every lifecycle task follows (resource provisioning, function deployment, deletion).

A lifecycle model is a :class:`LifecycleModel` (``public_id``, ``failure_reason``, the common
timestamps, ``lifecycle_task_id`` and ``requeue_count``) with a ``status`` of its own. Its work is a
set of :class:`Step` s, each done by one Celery task taking the row's id:

1. **claim**: check that the status still calls for the step and that no other message owns it; then
   record the step's working status and this message's id (``lifecycle_task_id``) with a conditional
   UPDATE (the same conditions in its WHERE: one message wins). A duplicate message, or the same task
   run twice, finds the step owned or already done and does nothing.
2. **work**: the provider call, outside any lock, so reads and PATCHes never wait for a slow cloud.
   A :class:`NotReady` (something the step needs is still on its way, or work the provider started is
   not finished: an instance booting) looks again later, keeping the claim: after ``poll_interval``,
   doubling on each look up to ``ELBIA_POLL_MAX`` (a Celery countdown, so no worker waits meanwhile),
   and fails the row once it has waited ``ELBIA_STUCK_AFTER`` seconds in all; a
   ``TransientProviderError`` retries with exponential backoff, then gives up; a ``ProviderError``
   fails the row with the provider's reason. Whatever the outcome, a ``provider_id`` the provider set on
   the row (the id of what it created) is saved, so the next look and every later call use it.
3. **complete**: under the lock again, only if this message still owns the step (the reaper may have
   handed it to another message meanwhile): the step's done status and time.

While a task works on a step it touches the row's ``heartbeat_at`` every ``ELBIA_HEARTBEAT_INTERVAL``
(a thread next to the provider call); before a retry it sets it to when the retry will run.

The reaper (a periodic task per model, every ``ELBIA_REAP_INTERVAL``) hands a step to a new message when

- its claim's heartbeat is older than ``ELBIA_HEARTBEAT_TIMEOUT``: the worker died (killed, out of memory,
  its machine gone). The dead worker's own message comes back later (the broker's visibility timeout)
  and finds the step owned by the new message, or done: nothing runs twice;
- it is unclaimed and untouched for ``ELBIA_STUCK_AFTER``: its message was lost after it was sent
  (while the outbox still holds unsent messages that old, the broker is down and nothing is lost).

It fails the row after ``ELBIA_STUCK_REQUEUES`` requeues. A claim is only taken over once its heartbeat
has stopped, so its first owner is surely gone (or past its hard time limit, which kills it).
"""

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from elbia.api.ids import PublicIdModel
from elbia.models import OutboxMessage
from elbia.observability import metrics, tracing
from elbia.outbox import enqueue
from elbia.providers import NotReady, ProviderError, TransientProviderError

logger = logging.getLogger(__name__)

MIN_POLL_SECONDS = 0.5
REAP_BATCH = 500
MAX_REASON = 1000


class LifecycleModel(PublicIdModel):
    """The fields every row moved through a lifecycle by Celery tasks shares; the model adds its ``status``."""

    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Which task message owns the current transient step (empty: the next message to arrive claims it),
    # and how often the reaper has requeued it.
    lifecycle_task_id = models.CharField(max_length=64, blank=True, editable=False)
    requeue_count = models.PositiveSmallIntegerField(default=0, editable=False)
    # The provider's own id of what it created (an instance id, a VPC id, a function ARN), and when the
    # drift check last found it changed or gone outside Elbia. The column's own default lets bulk loads
    # (COPY) leave it out.
    provider_id = models.CharField(max_length=255, blank=True, default="", db_default="", editable=False)
    drifted_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The owner's last sign of life (or when its retry is due): the reaper takes a silent claim over.
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True


@dataclass(frozen=True)
class Step:
    """One lifecycle step: the statuses it starts from, the status it works in, the one it ends in."""

    name: str
    starts_from: tuple[str, ...]
    working: str
    done: str
    done_at: str
    #: The field holding when the work was asked for (its duration, in elbia_lifecycle_duration_seconds, runs
    #: from there to ``done_at``); empty: not measured.
    started_at: str = ""


class StepFailed(Exception):
    """The step cannot be done, for a reason shown to the customer (raised by a claim check or the work)."""


def count_live(queryset) -> dict[str, int]:
    """How many rows of a lifecycle model's ``queryset`` are live (``total``: not deleted) and ``active``."""
    live = queryset.exclude(status="deleted")
    return live.aggregate(total=models.Count("id"), active=models.Count("id", filter=models.Q(status="active")))


def backoff(retries: int) -> float:
    """Seconds before retry ``retries + 1``: ELBIA_RETRY_BACKOFF * 2**retries, at most ELBIA_RETRY_BACKOFF_MAX."""
    return min(settings.ELBIA_RETRY_BACKOFF * 2**retries, settings.ELBIA_RETRY_BACKOFF_MAX)


def poll_interval(looks: int = 0) -> float:
    """Seconds before looking again at something still on its way: about one provider step at first,
    doubling with each look already made (``looks``), capped at ELBIA_POLL_MAX."""
    first = max(settings.ELBIA_PROVISION_DELAY, MIN_POLL_SECONDS)
    return min(first * 2 ** min(looks, 16), max(settings.ELBIA_POLL_MAX, first))


#: Checked under the row lock before a step is claimed: raise NotReady to wait, StepFailed to fail the row.
ClaimCheck = Callable[[models.Model], None]


class Lifecycle:
    """Claims, completes, fails and reaps the steps of one lifecycle model (see the module docstring)."""

    def __init__(
        self,
        *,
        model: type[models.Model],
        failed: str,
        steps: Iterable[Step],
        failed_at: str = "",
        claim_related: tuple[str, ...] = (),
    ):
        self.model = model
        #: Relations the claim reads with the row (what the claim checks look at): one query.
        self.claim_related = claim_related
        self.failed = failed
        self.failed_at = failed_at
        self.steps = {step.name: step for step in steps}
        self.transient = tuple(dict.fromkeys(status for step in self.steps.values() for status in step.starts_from))
        self.checks: dict[str, ClaimCheck] = {}
        self.tasks: dict[str, Task] = {}

    @property
    def noun(self) -> str:
        return str(self.model._meta.verbose_name).capitalize()

    @property
    def kind(self) -> str:
        """The ``kind`` label of this lifecycle's metrics: ``resource``, ``function``."""
        return self.model._meta.model_name

    def step_for(self, status: str) -> Step:
        """The step a row in the transient ``status`` is waiting for."""
        return next(step for step in self.steps.values() if status in step.starts_from)

    def task(self, step: Step, *, check: ClaimCheck | None = None):
        """Register the decorated Celery task as the one doing ``step`` (the reaper requeues it)."""

        def register(task: Task) -> Task:
            self.tasks[step.name] = task
            if check is not None:
                self.checks[step.name] = check
            return task

        return register

    def _locked(self, pk: int):
        # By primary key: no ORDER BY or LIMIT to compile and send (the model's ordering would add both).
        return next(iter(self.model._default_manager.select_for_update().filter(pk=pk).order_by()), None)

    def _fail(self, obj, reason: str, cause: str) -> None:
        """Fail ``obj`` (in a transient status) with ``reason``; ``cause`` is its class, a metrics label."""
        metrics.lifecycle_failures.labels(self.kind, self.step_for(obj.status).name, cause).inc()
        obj.status = self.failed
        obj.failure_reason = reason[:MAX_REASON]
        obj.lifecycle_task_id = ""
        fields = ["status", "failure_reason", "lifecycle_task_id", "requeue_count", "updated_at"]
        if self.failed_at:
            setattr(obj, self.failed_at, timezone.now())
            fields.append(self.failed_at)
        obj.save(update_fields=fields)

    def record_failure(self, pk: int, step: Step, task_id: str, reason: str, cause: str) -> bool:
        """Mark the row failed with ``reason`` if the step is still in progress and not owned by another task."""
        with transaction.atomic():
            obj = self._locked(pk)
            if obj is None or obj.status not in step.starts_from:
                return False
            if obj.lifecycle_task_id not in ("", task_id):
                return False
            self._fail(obj, reason, cause)
        logger.warning("%s %s: %s failed: %s", self.noun, obj.public_id, step.name, reason)
        return True

    def claim(self, pk: int, step: Step, task_id: str):
        """Take ownership of the step for ``task_id``; ``None`` when there is nothing (left) for it to do.

        Two statements, no transaction: read the row (with what its claim check reads, ``claim_related``),
        check it, then take the step with a conditional UPDATE (still in a status the step starts from, and
        unowned or ours): of two messages racing for it, one UPDATE matches and the other finds nothing.
        """
        rows = self.model._default_manager.filter(pk=pk).order_by()
        obj = next(iter(rows.select_related(*self.claim_related) if self.claim_related else rows), None)
        if obj is None or obj.status not in step.starts_from or obj.lifecycle_task_id not in ("", task_id):
            return None  # done, gone, or another message owns this step
        check = self.checks.get(step.name)
        if check is not None:
            try:
                check(obj)
            except StepFailed as failure:
                self.record_failure(pk, step, task_id, str(failure), "precondition")
                return None
        now = timezone.now()
        taken = rows.filter(status__in=step.starts_from, lifecycle_task_id__in=("", task_id)).update(
            status=step.working, lifecycle_task_id=task_id, heartbeat_at=now, updated_at=now
        )
        if not taken:
            return None  # another message took it since we read it
        obj.status, obj.lifecycle_task_id, obj.heartbeat_at, obj.updated_at = step.working, task_id, now, now
        return obj

    def touch(self, pk: int, task_id: str, *, until: float = 0) -> None:
        """Say that ``task_id`` still works on its claim (alive now, or due back in ``until`` seconds)."""
        alive_until = timezone.now() + timedelta(seconds=until)
        self.model._default_manager.filter(pk=pk, lifecycle_task_id=task_id).update(heartbeat_at=alive_until)

    @contextmanager
    def heartbeat(self, pk: int, task_id: str):
        """Touch the claim every ELBIA_HEARTBEAT_INTERVAL while the block runs (a thread with its own connection)."""
        stop = threading.Event()

        def beat() -> None:
            try:
                while not stop.wait(settings.ELBIA_HEARTBEAT_INTERVAL):
                    self.touch(pk, task_id)
            except DatabaseError:
                logger.warning("%s %s: heartbeat failed", self.noun, pk, exc_info=True)
            finally:
                connection.close()

        thread = threading.Thread(target=beat, name=f"heartbeat-{pk}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def complete(self, pk: int, step: Step, task_id: str) -> bool:
        """Record the step done, if ``task_id`` still owns it."""
        with transaction.atomic():
            obj = self._locked(pk)
            if obj is None or obj.status != step.working or obj.lifecycle_task_id != task_id:
                return False  # the reaper, or a newer request, handed the step to another message meanwhile
            obj.status = step.done
            setattr(obj, step.done_at, timezone.now())
            obj.lifecycle_task_id = ""
            obj.requeue_count = 0
            obj.save(update_fields=["status", step.done_at, "lifecycle_task_id", "requeue_count", "updated_at"])
        started = getattr(obj, step.started_at) if step.started_at else None
        if started is not None:
            elapsed = (getattr(obj, step.done_at) - started).total_seconds()
            metrics.lifecycle_duration.labels(self.kind, step.name).observe(max(elapsed, 0.0))
        logger.info("%s %s: %s done, now %s", self.noun, obj.public_id, step.name, step.done)
        return True

    def run(self, task: Task, pk: int, step: Step, work: Callable[[models.Model], None], *, looks: int = 0) -> str:
        """Claim, work, complete: the body of every lifecycle task. Returns what happened, for logs and tests.

        ``looks`` is how many times this message already looked at work still on its way (the task's
        ``looks`` argument, which each :class:`NotReady` retry increments): it spaces the next look, and
        keeps those retries out of the count of transient errors, which has a budget of its own.
        """
        task_id = task.request.id or f"local-{uuid.uuid4()}"
        failures = task.request.retries - looks
        try:
            obj = self.claim(pk, step, task_id)
            if obj is None:
                return "nothing to do"
            provider_id = obj.provider_id
            try:
                with self.heartbeat(pk, task_id), tracing.tracer.start_as_current_span(f"provider.{step.name}"):
                    work(obj)
            finally:
                if obj.provider_id != provider_id:
                    self.model._default_manager.filter(pk=pk).update(provider_id=obj.provider_id)
        except NotReady:
            waited = sum(poll_interval(look) for look in range(looks + 1))
            if waited > settings.ELBIA_STUCK_AFTER:
                self.record_failure(
                    pk, step, task_id, f"The {step.name} was still not done after {waited:.0f} seconds.", "not_ready"
                )
                return "failed"
            countdown = poll_interval(looks)
            self.touch(pk, task_id, until=countdown)
            again = {**(task.request.kwargs or {}), "looks": looks + 1}
            raise task.retry(kwargs=again, countdown=countdown, max_retries=None) from None
        except (ProviderError, StepFailed) as error:
            cause = "provider" if isinstance(error, ProviderError) else "precondition"
            self.record_failure(pk, step, task_id, str(error) or f"The provider refused the {step.name}.", cause)
            return "failed"
        except TransientProviderError as error:
            if failures >= settings.ELBIA_PROVIDER_MAX_RETRIES:
                raise  # on_failure records it
            logger.info("%s %s: transient error during %s, retrying: %s", self.noun, obj.public_id, step.name, error)
            countdown = backoff(failures)
            self.touch(pk, task_id, until=countdown)
            raise task.retry(exc=error, countdown=countdown, max_retries=None) from None
        return "done" if self.complete(pk, step, task_id) else "superseded"

    def _stuck(self) -> Q:
        """Rows whose step needs a new message: a claim gone silent, or unclaimed work left too long."""
        now = timezone.now()
        dead_claim = ~Q(lifecycle_task_id="") & Q(
            heartbeat_at__lt=now - timedelta(seconds=settings.ELBIA_HEARTBEAT_TIMEOUT)
        )
        stuck_after = now - timedelta(seconds=settings.ELBIA_STUCK_AFTER)
        if OutboxMessage.objects.filter(sent_at__isnull=True, created_at__lt=stuck_after).exists():
            return Q(status__in=self.transient) & dead_claim  # the broker is down: unsent work is not lost
        lost = (Q(lifecycle_task_id="") | Q(heartbeat_at__isnull=True)) & Q(updated_at__lt=stuck_after)
        return Q(status__in=self.transient) & (dead_claim | lost)

    def _reap_one(self, pk: int, stuck: Q) -> str | None:
        with transaction.atomic():
            obj = (
                self.model._default_manager.select_for_update(skip_locked=True)  # a concurrent reaper has it
                .filter(stuck, pk=pk)
                .first()
            )
            if obj is None:
                return None
            step = self.step_for(obj.status)
            if obj.requeue_count >= settings.ELBIA_STUCK_REQUEUES:
                self._fail(obj, f"The {step.name} did not finish after {obj.requeue_count + 1} attempts.", "stuck")
                return "failed"
            obj.requeue_count += 1
            obj.lifecycle_task_id = ""  # the next message to arrive owns the step
            obj.save(update_fields=["requeue_count", "lifecycle_task_id", "updated_at"])
            enqueue(self.tasks[step.name].name, obj.pk)
            metrics.lifecycle_requeues.labels(self.kind, step.name).inc()
            return "requeued"

    def reap(self) -> dict[str, int]:
        """Requeue the steps of dead workers and of lost messages (see the module docstring); fail hopeless ones."""
        stuck = self._stuck()
        rows = self.model._default_manager.filter(stuck).order_by("updated_at").values_list("pk", flat=True)
        outcome = {"requeued": 0, "failed": 0}
        for pk in list(rows[:REAP_BATCH]):
            result = self._reap_one(pk, stuck)
            if result:
                outcome[result] += 1
        if any(outcome.values()):
            logger.warning("Reaper (%s): %s", self.model._meta.verbose_name_plural, outcome)
        return outcome


class LifecycleTask(Task):
    """Base of the lifecycle tasks: late acknowledgement, and a failure handler that records ``failed``.

    Subclasses (``@shared_task(base=LifecycleTask, lifecycle=..., step_name=...)``) name their lifecycle
    and step; the task's first argument is the row's id.
    """

    acks_late = True
    reject_on_worker_lost = True
    # Celery's own cap (3 retries by default) would end a task that looked a few times at work on its way;
    # ``Lifecycle.run`` keeps both budgets itself: ELBIA_PROVIDER_MAX_RETRIES transient errors, and looks
    # until ELBIA_STUCK_AFTER seconds have gone by.
    max_retries = None
    lifecycle: Lifecycle
    step_name = ""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        step = self.lifecycle.steps[self.step_name]
        if isinstance(exc, TransientProviderError):
            reason = f"{exc} (gave up after {settings.ELBIA_PROVIDER_MAX_RETRIES + 1} attempts)"
            cause = "gave_up"
        elif isinstance(exc, SoftTimeLimitExceeded):
            reason = f"The provider did not finish {step.name} in time."
            cause = "timeout"
        else:
            reason = f"Internal error during {step.name}; the team has been notified."
            cause = "internal"
        pk = args[0] if args else next(iter(kwargs.values()))
        self.lifecycle.record_failure(pk, step, task_id, reason, cause)
