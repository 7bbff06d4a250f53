"""The transactional outbox: the one way to queue background work after a write, ``enqueue(task, *args)``.

Services call ``enqueue("resources.tasks.provision_resource", resource.pk)`` inside their transaction. The
task is named (a service never imports its app's tasks module: no import circles) and the message carries
ids only. Nothing talks to the broker inside the transaction:

1. ``enqueue`` writes an :class:`~elbia.models.OutboxMessage` row in the caller's transaction, so the
   work to do commits (or rolls back) together with the change that calls for it.
2. **Fast path.** Once the transaction commits, the same process marks its messages sent in one
   statement that locks them (``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)``), hands them
   to Celery and commits; a transaction that queued several messages sends them in one round trip. If the
   broker does not answer (``REDIS_CONNECT_TIMEOUT`` / ``REDIS_SOCKET_TIMEOUT``), the row stays unsent and
   the request answers as usual (201, 202: the idempotency record, committed with the change, holds that
   answer); this process then leaves sending to the relay for ``BROKER_RETRY_SECONDS``, so an outage
   costs one request a timeout, not every request.
3. **Relay.** Every Celery worker runs ``relay_forever`` in a thread (the ``OutboxRelay`` bootstep):
   every ``ELBIA_OUTBOX_RELAY_INTERVAL`` seconds it sends the unsent messages oldest first, in batches
   locked with ``SKIP LOCKED`` (two relays, or a relay and a fast path, never take the same row), and
   stops at the first broker error to try again next time. A message for an unknown task is given up
   (``last_error``) instead of blocking the ones after it.
4. ``purge_sent_outbox_messages`` (Celery beat, hourly) deletes messages sent more than
   ``ELBIA_OUTBOX_RETENTION`` ago.

Delivery is at least once: a process that dies after the broker took a message but before its
``sent_at`` committed leaves it unsent, and the relay sends it again. That is harmless: every task is
idempotent (``elbia.lifecycle``: a second message finds the step claimed or done and does nothing; the
billing tasks skip what is already there).
"""

import logging
import os
import threading
import time
from contextlib import contextmanager, suppress
from datetime import timedelta

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from elbia.api.middleware import current_request_id
from elbia.celery import REQUEST_ID_HEADER, app
from elbia.models import OutboxMessage
from elbia.observability import tracing

logger = logging.getLogger(__name__)

#: After the broker failed to take a message, this process leaves sending to the relay for this long.
BROKER_RETRY_SECONDS = 5.0
#: How many messages the relay locks and sends per transaction.
RELAY_BATCH = 100


class Dispatch:
    """Sends the outbox messages of one transaction right after it commits (what ``transaction.on_commit`` calls).

    One is registered per message (``task_name`` and ``args`` say what it sends; tests read them from the
    captured callbacks), but the messages of one transaction share a ``batch``: the first callback sends
    them all in one round trip, the others find nothing left to do.
    """

    def __init__(self, message: OutboxMessage, batch: list[int] | None = None):
        self.message_id = message.pk
        self.task_name = message.task_name
        self.args = tuple(message.args)
        self.batch = [] if batch is None else batch
        self.batch.append(message.pk)

    def __call__(self) -> None:
        if not self.batch:
            return  # sent with an earlier message of its transaction
        ids, self.batch[:] = list(self.batch), []
        if time.monotonic() < _broker_down_until:
            return  # the broker failed a moment ago: the relay sends it
        try:  # a message of a rolled-back savepoint is simply not found
            _send(ids=ids, batch=len(ids))
        except Exception:  # the write is committed whatever happens here; the relay sends the message
            logger.exception("Could not send %s%s after commit; the outbox relay will.", self.task_name, self.args)


def enqueue(task_name: str, *args) -> None:
    """Queue ``task_name(*args)`` with the current transaction: sent once it commits, never if it rolls back."""
    request_id = current_request_id.get()
    message = OutboxMessage.objects.create(
        task_name=task_name,
        args=list(args),
        request_id="" if request_id == "-" else request_id,
        trace_parent=tracing.current_parent(),
    )
    pending = transaction.get_connection().run_on_commit
    last = pending[-1][1] if pending else None
    transaction.on_commit(Dispatch(message, last.batch if isinstance(last, Dispatch) else None))


_broker_down_until = 0.0

#: Marks unsent messages sent, under a row lock held until the transaction ends (the send happens in
#: between), skipping rows another sender holds; the messages come back to be sent.
_CLAIM_SQL = (
    'UPDATE "elbia_outboxmessage" SET "sent_at" = %s, "attempts" = "attempts" + 1 WHERE "id" IN ('
    'SELECT "id" FROM "elbia_outboxmessage" WHERE "sent_at" IS NULL{only} ORDER BY "id" LIMIT %s{lock}) RETURNING *'
)


_connections = threading.local()


@contextmanager
def _broker_connection():
    """This thread's connection to the broker, kept between sends (a new one costs a dozen round trips).

    Made again in a forked child (``os.getpid``) or when the broker's URL changed; dropped (closed) on any
    error, so the next send connects afresh.
    """
    key = (os.getpid(), app.conf.broker_url)
    conn = getattr(_connections, "conn", None)
    if conn is None or _connections.key != key:
        conn = app.connection_for_write()
        _connections.conn, _connections.key = conn, key
    try:
        if not app.conf.task_always_eager:
            conn.ensure_connection(max_retries=0, timeout=settings.REDIS_CONNECT_TIMEOUT)
        yield conn
    except BaseException:
        _connections.conn = None
        with suppress(Exception):
            conn.release()
        raise


def _task(name: str):
    """The registered task ``name``; a web process imports the apps' tasks modules on first use."""
    if name not in app.tasks:
        app.loader.import_default_modules()  # Celery's autodiscovery: what a worker does at start
    return app.tasks.get(name)


@transaction.atomic
def _send(*, ids: list[int] | None = None, batch: int = RELAY_BATCH) -> tuple[int, int, bool]:
    """Send unsent messages oldest first (those of ``ids``, or up to ``batch``).

    Returns (how many were taken, how many were sent, no broker error). One statement marks them sent and
    locks them; they are handed to Celery while locked. A process that dies before the commit leaves them
    unsent (the relay sends them again: at least once).
    """
    postgresql = connection.vendor == "postgresql"
    if ids is None:
        only, params = "", []
    elif postgresql:
        only, params = ' AND "id" = ANY(%s)', [ids]
    else:
        only, params = f' AND "id" IN ({", ".join(["%s"] * len(ids))})', ids
    sql = _CLAIM_SQL.format(only=only, lock=" FOR UPDATE SKIP LOCKED" if postgresql else "")
    messages = sorted(OutboxMessage.objects.raw(sql, [timezone.now(), *params, batch]), key=lambda m: m.pk)
    if not messages:
        return 0, 0, True
    return len(messages), *_deliver(messages)


def _deliver(messages: list[OutboxMessage]) -> tuple[int, bool]:
    """Hand ``messages`` (locked, marked sent) to Celery in order; take back those it did not get."""
    global _broker_down_until
    sent, unknown, failure = [], [], None
    try:
        with _broker_connection() as conn:
            for message in messages:
                task = _task(message.task_name)
                if task is None:
                    unknown.append(message.pk)
                    continue
                headers = {REQUEST_ID_HEADER: message.request_id} if message.request_id else {}
                # The span of sending, under the one that queued the work (the request, even when the relay
                # sends it later): the task's own spans follow it through the message's headers.
                with tracing.span_under(message.trace_parent, "outbox.send", **{"celery.task_name": task.name}):
                    task.apply_async(args=message.args, connection=conn, retry=False, headers=headers)
                sent.append(message.pk)
    except Exception as exc:  # the broker's own errors differ by transport: any failure here is the broker's
        failure = exc
    if unknown:
        OutboxMessage.objects.filter(pk__in=unknown).update(last_error="No such task.")
        logger.error("Outbox: gave up messages %s for unknown tasks.", unknown)
    if failure is None:
        return len(sent), True
    _broker_down_until = time.monotonic() + BROKER_RETRY_SECONDS
    done = set(sent) | set(unknown)
    unsent = [message.pk for message in messages if message.pk not in done]
    OutboxMessage.objects.filter(pk__in=unsent[1:]).update(sent_at=None, attempts=F("attempts") - 1)
    OutboxMessage.objects.filter(pk=unsent[0]).update(
        sent_at=None, last_error=f"{type(failure).__name__}: {failure}"[:500]
    )
    logger.warning("Outbox: the broker did not take %s (%s); will try again.", unsent[0], failure)
    return len(sent), False


def outbox_relay(*, batch: int = RELAY_BATCH) -> int:
    """Send every unsent message, oldest first; stop at the first broker error. Returns how many were sent."""
    total = 0
    while True:
        taken, sent, delivered = _send(batch=batch)
        total += sent
        if not delivered or taken < batch:
            return total


def relay_forever(stop: threading.Event) -> None:
    """Run the relay every ELBIA_OUTBOX_RELAY_INTERVAL seconds until ``stop`` is set (a worker's thread)."""
    try:
        while not stop.wait(settings.ELBIA_OUTBOX_RELAY_INTERVAL):
            close_old_connections()
            try:
                sent = outbox_relay()
            except Exception:  # the database is unreachable, say: try again next time
                logger.exception("Outbox relay failed; trying again in %s s.", settings.ELBIA_OUTBOX_RELAY_INTERVAL)
                continue
            if sent:
                logger.info("Outbox relay: sent %s queued messages.", sent)
    finally:
        connection.close()


class RelayThread:
    """The relay's thread in a worker's main process: started with the worker, stopped (and joined) with it."""

    def __init__(self):
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=relay_forever, args=(self.stopping,), name="outbox-relay", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=10)


class OutboxRelay(bootsteps.StartStopStep):
    """The worker bootstep running the relay (registered by name in elbia.celery)."""

    requires = {"celery.worker.components:Pool"}

    def create(self, worker) -> RelayThread:
        return RelayThread()


@transaction.atomic
def outbox_purge_sent() -> int:
    """Delete the messages sent more than ELBIA_OUTBOX_RETENTION ago; returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.ELBIA_OUTBOX_RETENTION)
    deleted, _ = OutboxMessage.objects.filter(sent_at__lt=cutoff).delete()
    return deleted
