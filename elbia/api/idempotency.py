"""Idempotency keys for creating POSTs: a retry with the same ``Idempotency-Key`` replays the first response.

A handler opts in with ``@idempotent``; ``elbia.api.views.CreateMixin`` does so for every creating viewset:

    class UsageEventsView(ApiView):
        @idempotent
        def post(self, request): ...

How a keyed request runs (see docs/rate-limits-and-idempotency.md):

1. The key is claimed by inserting an ``IdempotencyRecord`` in its own
   transaction; the unique (account, key) constraint picks one winner among
   concurrent requests.
2. The winner locks its record and runs the view in one transaction with the
   record's completion, so the objects it creates and the stored response
   commit together (or not at all). A 5xx or an unexpected error rolls the work
   back and deletes the claim, so a retry runs again; so does a 429 (a limit reached: try again later);
   other 2xx and 4xx are stored.
3. Anyone else with that key gets the stored response (``Idempotent-Replayed:
   true``) once completed, ``409 idempotency_conflict`` while it runs, and
   ``422 idempotency_key_reused`` for a different request.
"""

import contextlib
import functools
import hashlib
import json
from datetime import datetime, timedelta

from django.db import IntegrityError, OperationalError, transaction
from django.http.request import RawPostDataException
from django.utils import timezone
from rest_framework.response import Response

from elbia.accounts.models import Account, IdempotencyRecord
from elbia.api import headers
from elbia.api.exceptions import IdempotencyConflict, IdempotencyKeyReused, InvalidParameter
from elbia.api.renderers import JSONRenderer

HEADER = headers.IDEMPOTENCY_KEY
REPLAYED_HEADER = headers.IDEMPOTENT_REPLAYED
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
# A claim whose request died (a killed worker) is taken over once unlocked and older than this;
# younger unlocked claims belong to a request about to lock them.
CLAIM_GRACE = timedelta(seconds=10)
# Response headers stored with the response and replayed.
REPLAYED_RESPONSE_HEADERS = (
    headers.LOCATION,
    headers.INVOCATION_ID,
    headers.DURATION_MS,
    headers.BILLED_DURATION_MS,
    headers.LOG_RESULT,
    headers.FUNCTION_ERROR,
    headers.COLD_START,
    headers.INIT_DURATION_MS,
)
LOCK_NOT_AVAILABLE = "55P03"


def idempotent(handler):
    """Make a view's ``post`` (or a viewset's ``create``) honour the ``Idempotency-Key`` header."""

    @functools.wraps(handler)
    def wrapper(view, request, *args, **kwargs):
        return run_idempotently(view, request, lambda: handler(view, request, *args, **kwargs))

    wrapper.idempotent = True
    return wrapper


def run_idempotently(view, request, call):
    """Run ``call()`` (the view's handler) at most once per (account, Idempotency-Key) within 24 hours."""
    key = request.headers.get(HEADER)
    if key is None or request.auth is None:
        return call()
    _validate_key(key)
    record = _claim(account=request.auth.account, key=key, fingerprint=request_fingerprint(request))
    if record.completed_at is not None:
        return _replay(record)
    return _execute(view, record, call)


def _validate_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= char <= "~" for char in key):
        raise InvalidParameter(f"Header '{HEADER}' must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.")


def request_fingerprint(request) -> str:
    """SHA-256 of the method, the path with its sorted query and the body (JSON in canonical form)."""
    try:
        body = request.body
    except RawPostDataException:  # the view's parser read the stream already
        body = json.dumps(request.data).encode()
    with contextlib.suppress(ValueError, RecursionError):  # not JSON: the raw bytes identify it
        body = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    query = "&".join(sorted(f"{name}={value}" for name, value in request.query_params.lists()))
    digest = hashlib.sha256(f"{request.method}\n{request.path}\n{query}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def _claim(*, account: Account, key: str, fingerprint: str) -> IdempotencyRecord:
    """This request's new record, or the completed record to replay; 409 or 422 otherwise."""
    records = IdempotencyRecord.objects.filter(account=account, key=key)
    for _ in range(3):
        existing = records.first()
        if existing is None:
            try:
                with transaction.atomic():
                    # No full_clean(): its unique check would be a racy SELECT; the constraint decides.
                    return IdempotencyRecord.objects.create(account=account, key=key, fingerprint=fingerprint)
            except IntegrityError:
                continue  # another request claimed it first
        elif existing.created_at <= timezone.now() - RETENTION:
            records.filter(pk=existing.pk, created_at=existing.created_at).delete()
        elif existing.fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        elif existing.completed_at is not None:
            return existing
        elif not _take_over_abandoned(existing):
            raise IdempotencyConflict()
    raise IdempotencyConflict()


def _take_over_abandoned(record: IdempotencyRecord) -> bool:
    """Delete a claim whose request is gone; False while its request still runs (it holds the row lock)."""
    if timezone.now() - record.created_at < CLAIM_GRACE:
        return False
    try:
        with transaction.atomic():
            unlocked = IdempotencyRecord.objects.select_for_update(nowait=True).filter(
                pk=record.pk, completed_at__isnull=True
            )
            IdempotencyRecord.objects.filter(pk__in=list(unlocked.values_list("pk", flat=True))).delete()
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return False
        raise
    return True


class _Discard(Exception):
    """Leaves the transaction (rolling the view's work back) carrying the response to send."""

    def __init__(self, response):
        self.response = response


def _execute(view, record: IdempotencyRecord, call):
    """Run the view under the record's row lock; store its response in the same transaction."""
    try:
        with transaction.atomic():
            locked = IdempotencyRecord.objects.select_for_update().filter(pk=record.pk, completed_at__isnull=True)
            if not list(locked.values_list("pk", flat=True)):
                raise IdempotencyConflict()  # taken over meanwhile: another request runs it
            try:
                with transaction.atomic():
                    response = call()
            except Exception as exc:
                response = view.handle_exception(exc)  # an error response, with the failed work rolled back
            if response.status_code >= 500 or response.status_code == 429:  # "try again later": not an answer
                raise _Discard(response)
            _complete(record, response)
        return response
    except IdempotencyConflict:
        raise
    except _Discard as discard:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        return discard.response
    except BaseException:
        IdempotencyRecord.objects.filter(pk=record.pk).delete()
        raise


def _complete(record: IdempotencyRecord, response) -> None:
    data = getattr(response, "data", None)
    record.response_status = response.status_code
    record.response_body = "" if data is None else JSONRenderer().render(data).decode()
    record.response_headers = {name: response[name] for name in REPLAYED_RESPONSE_HEADERS if response.has_header(name)}
    record.completed_at = timezone.now()
    record.save(update_fields=["response_status", "response_body", "response_headers", "completed_at"])


def _replay(record: IdempotencyRecord) -> Response:
    data = json.loads(record.response_body) if record.response_body else None
    headers = {**record.response_headers, REPLAYED_HEADER: "true"}
    return Response(data, status=record.response_status, headers=headers)


@transaction.atomic
def idempotency_records_purge_expired(*, now: datetime | None = None) -> int:
    """Delete the idempotency records older than 24 hours; returns how many."""
    cutoff = (now or timezone.now()) - RETENTION
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lte=cutoff).delete()
    return deleted
