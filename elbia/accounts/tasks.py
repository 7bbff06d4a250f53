from celery import shared_task
from oauth2_provider.models import clear_expired

from elbia.api.idempotency import idempotency_records_purge_expired


@shared_task
def clear_expired_tokens() -> None:
    """Delete expired access tokens and revoked or expired refresh tokens (django-oauth-toolkit's own clean-up)."""
    clear_expired()


@shared_task
def purge_expired_idempotency_records() -> int:
    """Delete Idempotency-Key records past their 24 hours; running it twice at once is harmless."""
    return idempotency_records_purge_expired()
