"""The ground floor's periodic jobs."""

from celery import shared_task

from elbia.outbox import outbox_purge_sent


@shared_task
def purge_sent_outbox_messages() -> int:
    """Delete outbox messages sent more than ELBIA_OUTBOX_RETENTION ago (Celery beat, hourly)."""
    return outbox_purge_sent()
