"""Writes for billing: recording usage, generating invoices, their status and their PDFs."""

import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from billing.locks import lock_account_billing, lock_accounts_billing
from billing.models import Invoice, InvoiceLine, InvoiceStatus, UsageEvent
from billing.pdf import render_invoice_pdf
from billing.periods import (
    closed_month,
    closed_months,
    current_month,
    format_month,
    month_end,
    month_start,
    next_month,
    previous_month,
)
from billing.rollups import add_function_usage
from billing.selectors import PriceBook, PriceMissing, Usage, metered_usage, price_book_for_month, price_usage
from elbia.accounts.models import Account
from elbia.accounts.selectors import account_contact_email
from elbia.api.ids import ATTEMPTS as PUBLIC_ID_ATTEMPTS
from elbia.api.ids import new_public_id
from elbia.outbox import enqueue
from functions.executions import function_record_executions
from functions.models import Function

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_BATCH = 1000
BATCH_SIZE_ERROR = f"Send from 1 to {MAX_EVENTS_PER_BATCH:,} events."
# How far ahead of the server's clock an event's timestamp may be (clocks drift).
CLOCK_SKEW = timedelta(minutes=5)
# The invoice job fills in at most this many closed months per account (a year of history).
MAX_BACKFILL_MONTHS = 12
# Accounts the invoice job reads at a time (and hands to one Celery task).
INVOICE_CHUNK_SIZE = 500
# Invoices made in one transaction (a chunk of the job): big enough that each of its constant number of
# statements serves many accounts, small enough to hold the accounts' billing locks a fraction of a second.
INVOICES_PER_TRANSACTION = 500
INVOICE_COLUMNS = ("public_id", "account_id", "period", "date", "status", "amount_cents", "currency", "pdf",
                   "pdf_status", "created_at", "paid_at")  # fmt: skip
INVOICE_ARRAY_TYPES = ("varchar", "bigint", "date", "date", "varchar", "bigint", "varchar", "varchar", "varchar",
                       "timestamptz", "timestamptz")  # fmt: skip


# --- Metering ---------------------------------------------------------------------------------


class UsageEventInput(NamedTuple):
    """One execution record as the API parsed it (types checked; business rules not yet).

    A named tuple: a batch makes a thousand of them, and a tuple is the cheapest object to build.
    """

    event_id: str
    function: str  # the function's public id
    timestamp: datetime
    duration_ms: int
    memory_mb: int | None = None


@dataclass(frozen=True)
class UsageRecordResult:
    """What a batch of usage events did: events stored, and events already recorded (ignored)."""

    accepted: int
    duplicates: int


def event_error_key(index: int, field: str) -> str:
    """How a batch's errors name an event's field: ``events[3].timestamp``."""
    return f"events[{index}].{field}"


@transaction.atomic
def usage_record_events(
    *, account: Account, events: list[UsageEventInput], now: datetime | None = None
) -> UsageRecordResult:
    """Store a batch of execution records, each ``event_id`` once per account forever; all or nothing.

    Every event must name a function of ``account`` and a timestamp no more than ``CLOCK_SKEW``
    ahead of now, no earlier than the previous month (UTC) and than the function's creation, in a
    month not yet invoiced. One bad event refuses the whole batch with ``ValidationError`` keyed
    ``events[i].field``. Resent events (and an event_id repeated within the batch: the first one
    counts) are duplicates. The functions' ``last_executed`` move forward. A constant number of
    queries for any batch size.
    """
    if not 1 <= len(events) <= MAX_EVENTS_PER_BATCH:
        raise ValidationError({"events": [BATCH_SIZE_ERROR]})
    now = now or timezone.now()
    lock_account_billing(account.id, shared=True)

    functions = {
        public_id: (function_id, memory_mb, created_at)
        for public_id, function_id, memory_mb, created_at in Function.objects.for_account(account)
        .filter(public_id__in={event.function for event in events})
        .values_list("public_id", "id", "memory_mb", "created_at")
    }
    earliest = datetime.combine(previous_month(current_month(now)), time.min, tzinfo=UTC)
    latest = now + CLOCK_SKEW
    errors: dict[str, list[str]] = {}
    for index, event in enumerate(events):
        found = functions.get(event.function)
        if found is None:
            errors[event_error_key(index, "function")] = [f"No function {event.function!r} in this account."]
        elif event.timestamp > latest:
            errors[event_error_key(index, "timestamp")] = [
                f"Must not be more than {int(CLOCK_SKEW.total_seconds() // 60)} minutes in the future."
            ]
        elif event.timestamp < earliest:
            errors[event_error_key(index, "timestamp")] = [
                f"Must not be before {format_month(earliest.date())}-01T00:00:00Z: older months are closed."
            ]
        elif event.timestamp < found[2] - CLOCK_SKEW:
            errors[event_error_key(index, "timestamp")] = ["Must not be before the function was created."]
    if not errors:
        months = {month_start(event.timestamp.astimezone(UTC).date()) for event in events}
        invoiced = set(Invoice.objects.for_account(account).filter(period__in=months).values_list("period", flat=True))
        for index, event in enumerate(events):
            month = month_start(event.timestamp.astimezone(UTC).date())
            if month in invoiced:
                errors[event_error_key(index, "timestamp")] = [
                    f"{format_month(month)} is already invoiced: late events for it are refused."
                ]
    if errors:
        raise ValidationError(errors)

    rows: dict[str, tuple] = {}
    last_executed: dict[int, datetime] = {}
    for event in events:
        if event.event_id in rows:
            continue
        function_id, memory_mb, _ = functions[event.function]
        rows[event.event_id] = (
            account.id,
            function_id,
            event.event_id,
            event.timestamp,
            event.duration_ms,
            event.memory_mb or memory_mb,
            now,
        )
        if function_id not in last_executed or event.timestamp > last_executed[function_id]:
            last_executed[function_id] = event.timestamp
    inserted = _insert_skipping_duplicates(list(rows.values()))
    # The daily rollups count exactly the rows inserted (a resend adds nothing), in this transaction.
    add_function_usage(rows[event_id][:2] + rows[event_id][3:6] for event_id in inserted)
    function_record_executions(account=account, last_executed=last_executed)
    return UsageRecordResult(accepted=len(inserted), duplicates=len(events) - len(inserted))


_EVENT_COLUMNS = ("account_id", "function_id", "event_id", "timestamp", "duration_ms", "memory_mb", "received_at")
_EVENT_ARRAY_TYPES = ("bigint", "bigint", "varchar", "timestamptz", "integer", "integer", "timestamptz")


def _insert_skipping_duplicates(rows: list[tuple]) -> list[str]:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING``: one statement, and the event ids really inserted.

    ``bulk_create(ignore_conflicts=True)`` cannot say which rows it skipped; counting before and
    after would count other transactions' rows too.
    """
    conflict = (
        f"ON CONFLICT ({connection.ops.quote_name('account_id')}, {connection.ops.quote_name('event_id')}) DO NOTHING"
    )
    return [
        row[0]
        for row in _insert_returning(UsageEvent, _EVENT_COLUMNS, _EVENT_ARRAY_TYPES, rows, conflict, ("event_id",))
    ]


def _insert_returning(model, fields, array_types, rows, conflict: str, returning=("id", "public_id", "account_id")):
    """Insert ``rows`` (tuples of ``fields``, attribute names) in one statement and return ``returning`` per row.

    On PostgreSQL the rows travel as one array per column (a constant statement whatever their
    number); SQLite (3.35+) gets a multi-row VALUES list. Only identifiers from the model's own
    metadata are interpolated; every value is a parameter.
    """
    if not rows:
        return []
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name) for name in fields]
    table = f"{quote(model._meta.db_table)} ({', '.join(quote(column.column) for column in columns)})"
    tail = f"{conflict} RETURNING {', '.join(quote(name) for name in returning)}"
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{kind}[]" for kind in array_types)
        sql = f"INSERT INTO {table} SELECT * FROM unnest({arrays}) {tail}"  # noqa: S608
        params = [list(column) for column in zip(*rows, strict=True)]
    else:
        row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
        sql = f"INSERT INTO {table} VALUES {', '.join([row_sql] * len(rows))} {tail}"  # noqa: S608
        params = [
            column.get_db_prep_save(value, connection)
            for row in rows
            for column, value in zip(columns, row, strict=True)
        ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# --- Invoices ----------------------------------------------------------------------------------


@dataclass
class InvoiceRun:
    """What a run of invoice generation did; ``unpriced`` says why accounts were left for a later run."""

    created: int = 0
    existing: int = 0
    failed: int = 0
    unpriced: list[PriceMissing] = field(default_factory=list)

    def add(self, other: "InvoiceRun") -> None:
        self.created += other.created
        self.existing += other.existing
        self.failed += other.failed
        self.unpriced.extend(other.unpriced)


@transaction.atomic
def invoice_generate_for_month(*, account: Account, month: date, now: datetime | None = None) -> Invoice:
    """The account's invoice for a closed ``month``: created from /v1/usage's computation, or the existing one.

    Raises ``PriceMissing`` when the price book cannot price the month's usage.
    """
    now = now or timezone.now()
    month = _closed_month(month, now)
    run = _invoices_create(account_ids=[account.id], month=month, now=now, prices=price_book_for_month(month=month))
    if run.unpriced:
        raise run.unpriced[0]
    return Invoice.objects.for_account(account).get(period=month)


def _closed_month(month: date, now: datetime) -> date:
    try:
        return closed_month(month, now=now)
    except ValueError as exc:
        raise ValidationError({"month": [str(exc)]}) from None


def _insert_invoices(priced: dict[int, Usage], *, month: date, now: datetime) -> tuple[list[tuple[int, int]], int]:
    """Insert the invoices of ``priced`` accounts in one statement each attempt: ((invoice id, account id) of
    the invoices made, how many were made meanwhile by another run).

    ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: an account invoiced concurrently (the unique
    (account, period) constraint backs the billing lock up) is counted as existing; a public ID that
    happens to collide is drawn again for that row alone. A zero invoice is paid from the start.
    """
    waiting = dict(priced)
    made: list[tuple[int, int]] = []
    raced = 0
    end = month_end(month)
    for _attempt in range(PUBLIC_ID_ATTEMPTS):
        if not waiting:
            break
        rows = []
        for account_id, usage in sorted(waiting.items()):
            nothing_due = usage.cost_cents == 0
            rows.append(
                (new_public_id(Invoice.PUBLIC_ID_PREFIX), account_id, month, end,
                 InvoiceStatus.PAID if nothing_due else InvoiceStatus.OPEN, usage.cost_cents, usage.currency, "", "",
                 now, now if nothing_due else None)
            )  # fmt: skip
        for invoice_id, _public_id, account_id in _insert_returning(
            Invoice, INVOICE_COLUMNS, INVOICE_ARRAY_TYPES, rows, "ON CONFLICT DO NOTHING"
        ):
            made.append((invoice_id, account_id))
            waiting.pop(account_id)
        if waiting:
            invoiced = set(
                Invoice.objects.filter(account_id__in=list(waiting), period=month).values_list("account_id", flat=True)
            )
            raced += len(invoiced)
            for account_id in invoiced:
                waiting.pop(account_id)
    if waiting:
        raise IntegrityError(f"Could not draw free invoice ids for {len(waiting)} accounts.")
    return made, raced


@transaction.atomic
def _invoices_create(*, account_ids: list[int], month: date, now: datetime, prices: PriceBook) -> InvoiceRun:
    """Create the missing invoices of these accounts for ``month``: one transaction, under their billing locks.

    The locks (taken in account order, so that two runs never deadlock) make a concurrent run wait
    and then find the invoices made; they also wait for metering transactions still in flight, so
    the usage computed here is final. The unique constraint backs the lock up. Whatever the number of
    accounts: the locks, the invoices there, the usage (``metered_usage``), one INSERT of the invoices,
    one of their lines (``bulk_create``), one outbox entry for their PDFs.
    """
    account_ids = sorted(account_ids)
    lock_accounts_billing(account_ids, shared=False)
    invoiced = Invoice.objects.filter(account_id__in=account_ids, period=month)
    existing = set(invoiced.values_list("account_id", flat=True))
    run = InvoiceRun(existing=len(existing))
    missing = [account_id for account_id in account_ids if account_id not in existing]
    metered = metered_usage(account_ids=missing, month=month, now=now) if missing else {}
    priced: dict[int, Usage] = {}
    for account_id in missing:
        try:
            priced[account_id] = price_usage(metered[account_id], month=month, prices=prices)
        except PriceMissing as exc:
            logger.error("Cannot invoice account %s for %s: %s", account_id, format_month(month), exc)
            run.failed += 1
            run.unpriced.append(exc)
    inserted, raced = _insert_invoices(priced, month=month, now=now)
    run.existing += raced
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice_id=invoice_id,
            position=position,
            kind=line.kind,
            instance_type=line.instance_type,
            description=line.description,
            quantity=line.quantity,
            unit=line.unit,
            unit_price=line.unit_price,
            price_unit=line.price_unit,
            amount_cents=line.amount_cents,
        )
        for invoice_id, account_id in inserted
        for position, line in enumerate(priced[account_id].lines, start=1)
    )
    run.created = len(inserted)
    _queue_pdfs(sorted(invoice_id for invoice_id, _ in inserted))
    return run


def invoice_generate_missing(
    *,
    today: date | None = None,
    month: date | None = None,
    account_ids: Iterable[int] | None = None,
    chunk_size: int = INVOICE_CHUNK_SIZE,
    batch_size: int = INVOICES_PER_TRANSACTION,
) -> InvoiceRun:
    """Create every invoice still missing for closed months; running it again, or concurrently, changes nothing.

    Each account is invoiced for the closed months since it was created, at most the last
    ``MAX_BACKFILL_MONTHS`` (or only ``month``). Accounts are read ``chunk_size`` at a time by id;
    their missing invoices are made ``batch_size`` to a transaction, so a run killed half-way
    leaves whole invoices behind, no transaction grows with the number of accounts, and the next
    run finishes the rest. Usage the price book cannot price is logged and left for a later run.
    """
    now = timezone.now() if today is None else datetime.combine(today, time.min, tzinfo=UTC)
    this_month = current_month(now)
    accounts = Account.objects.filter(created_at__lt=datetime.combine(this_month, time.min, tzinfo=UTC))
    if month is not None:
        month = _closed_month(month, now)
        accounts = accounts.filter(created_at__lt=datetime.combine(next_month(month), time.min, tzinfo=UTC))
    if account_ids is not None:
        accounts = accounts.filter(id__in=list(account_ids))
    accounts = accounts.order_by("id").values_list("id", "created_at", named=True)

    run = InvoiceRun()
    price_books: dict[date, PriceBook] = {}
    last_id = 0
    while chunk := list(accounts.filter(id__gt=last_id)[:chunk_size]):
        last_id = chunk[-1].id
        wanted = {
            account.id: [month]
            if month is not None
            else closed_months(since=account.created_at, before=this_month, limit=MAX_BACKFILL_MONTHS)
            for account in chunk
        }
        earliest = min((months[0] for months in wanted.values() if months), default=this_month)
        have = set(
            Invoice.objects.filter(account_id__in=[account.id for account in chunk], period__gte=earliest).values_list(
                "account_id", "period"
            )
        )
        missing: dict[date, list[int]] = {}
        for account in chunk:
            for billed_month in wanted[account.id]:
                if (account.id, billed_month) in have:
                    run.existing += 1
                else:
                    missing.setdefault(billed_month, []).append(account.id)
        for billed_month, owing in sorted(missing.items()):
            if billed_month not in price_books:
                price_books[billed_month] = price_book_for_month(month=billed_month)
            for start in range(0, len(owing), batch_size):
                run.add(
                    _invoices_create(
                        account_ids=owing[start : start + batch_size],
                        month=billed_month,
                        now=now,
                        prices=price_books[billed_month],
                    )
                )
    return run


def _settle(invoice: Invoice, *, status: str, stamp: str, refused_from: str, refusal: str) -> Invoice:
    """Move an open invoice to ``status``, stamping ``stamp``; already there changes nothing."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status == status:
        return invoice
    if invoice.status == refused_from:
        raise ValidationError({"status": [refusal]})
    invoice.status = status
    setattr(invoice, stamp, timezone.now())
    invoice.full_clean(validate_unique=False, validate_constraints=False)
    invoice.save(update_fields=["status", stamp])
    _queue_pdfs([invoice.id])
    return invoice


@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice) -> Invoice:
    """Record that an open invoice was paid (paying a paid invoice again changes nothing)."""
    return _settle(
        invoice,
        status=InvoiceStatus.PAID,
        stamp="paid_at",
        refused_from=InvoiceStatus.VOID,
        refusal="A void invoice cannot be paid.",
    )


@transaction.atomic
def invoice_void(*, invoice: Invoice) -> Invoice:
    """Cancel an open invoice; it stays (one invoice per account and month), marked void."""
    return _settle(
        invoice,
        status=InvoiceStatus.VOID,
        stamp="voided_at",
        refused_from=InvoiceStatus.PAID,
        refusal="A paid invoice cannot be voided.",
    )


@transaction.atomic
def invoice_render_pdf(*, invoice: Invoice) -> Invoice:
    """Render the invoice's PDF now and store it, replacing any earlier one."""
    invoice = Invoice.objects.select_for_update().select_related("account").get(pk=invoice.pk)
    return _store_pdf(invoice)


@transaction.atomic
def invoice_ensure_pdf(*, invoice_id: int) -> Invoice | None:
    """Render and store the invoice's PDF unless the stored one is current: what tasks and downloads call."""
    invoice = Invoice.objects.select_for_update().select_related("account").filter(pk=invoice_id).first()
    if invoice is None or invoice.pdf_is_current:
        return invoice
    return _store_pdf(invoice)


def _store_pdf(invoice: Invoice) -> Invoice:
    previous = invoice.pdf.name
    content = render_invoice_pdf(
        invoice=invoice,
        lines=list(invoice.lines.order_by("position")),
        bill_to_email=account_contact_email(account=invoice.account),
    )
    # A fresh name per rendering: a link being downloaded never sees a half-written file.
    invoice.pdf.save(f"{invoice.public_id}-{secrets.token_hex(4)}.pdf", ContentFile(content), save=False)
    invoice.pdf_status = invoice.status
    invoice.save(update_fields=["pdf", "pdf_status"])
    storage = invoice.pdf.storage
    if previous and previous != invoice.pdf.name:
        transaction.on_commit(lambda: storage.delete(previous))
    return invoice


def _queue_pdfs(invoice_ids: list[int]) -> None:
    """Render PDFs in a worker once the invoices are committed (one message for a whole batch).

    A lost message is healed: the download view renders a missing PDF, and the daily job re-queues them.
    """
    if invoice_ids:
        enqueue("billing.tasks.render_invoice_pdfs", invoice_ids)


def invoice_queue_stale_pdfs(*, older_than: timedelta = timedelta(minutes=10)) -> int:
    """Queue rendering for invoices whose stored PDF is missing or shows an old status (lost messages)."""
    stale = Invoice.objects.filter(Q(pdf="") | ~Q(pdf_status=F("status")), created_at__lt=timezone.now() - older_than)
    ids = list(stale.order_by("id").values_list("id", flat=True))
    for start in range(0, len(ids), INVOICES_PER_TRANSACTION):
        enqueue("billing.tasks.render_invoice_pdfs", ids[start : start + INVOICES_PER_TRANSACTION])
    return len(ids)
