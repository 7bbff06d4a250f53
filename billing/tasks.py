"""Billing's background work: invoice PDFs and the daily invoice job (fanned out in chunks of accounts)."""

import logging
import time
from datetime import date

from celery import shared_task

from billing.periods import parse_month
from billing.rollups import metering_close
from billing.services import INVOICE_CHUNK_SIZE, invoice_ensure_pdf, invoice_generate_missing, invoice_queue_stale_pdfs
from elbia.accounts.models import Account
from elbia.observability import metrics

logger = logging.getLogger(__name__)


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def render_invoice_pdfs(invoice_ids: list[int]) -> None:
    """Render and store invoices' PDFs unless the stored ones are current (so running twice is harmless)."""
    for invoice_id in invoice_ids:
        invoice_ensure_pdf(invoice_id=invoice_id)


def _fan_out(today: str | None = None, month: str | None = None) -> int:
    """Queue one ``generate_invoices_for_accounts`` task per chunk of accounts; returns how many."""
    last_id, chunks = 0, 0
    while ids := list(
        Account.objects.filter(id__gt=last_id).order_by("id").values_list("id", flat=True)[:INVOICE_CHUNK_SIZE]
    ):
        last_id = ids[-1]
        generate_invoices_for_accounts.delay(ids, today, month)
        chunks += 1
    return chunks


@shared_task
def close_metering_day() -> str:
    """Meter open compute spans up to the last UTC midnight (``billing.rollups.metering_close``); idempotent."""
    result = metering_close()
    return result.through.isoformat() if result.through else ""


@shared_task
def generate_missing_invoices(today: str | None = None) -> int:
    """The daily beat job: one task per chunk of accounts creates whatever invoices are missing.

    Whatever a lost or killed chunk left undone, the next day's run does; chunks running twice
    or at once create nothing twice. Also re-queues PDFs whose rendering message was lost.
    """
    chunks = _fan_out(today=today)
    stale = invoice_queue_stale_pdfs()
    logger.info("Queued %s invoice chunks and %s stale PDFs", chunks, stale)
    return chunks


@shared_task
def generate_invoices_for_month(month: str) -> int:
    """Staff's run of invoice generation for one closed month (``YYYY-MM``, from the admin), fanned out like the job."""
    chunks = _fan_out(month=month)
    logger.info("Queued %s invoice chunks for %s", chunks, month)
    return chunks


@shared_task
def generate_invoices_for_accounts(account_ids: list[int], today: str | None = None, month: str | None = None) -> None:
    """Create the missing invoices of these accounts (one chunk of the daily job, or of a month's run)."""
    started = time.perf_counter()
    run = invoice_generate_missing(
        today=date.fromisoformat(today) if today else None,
        month=parse_month(month) if month else None,
        account_ids=account_ids,
        chunk_size=len(account_ids),
    )
    metrics.record_invoice_run(seconds=time.perf_counter() - started, created=run.created, failed=run.failed)
    logger.info("Invoices for %s accounts: %s", len(account_ids), run)
