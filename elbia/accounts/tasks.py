from celery import shared_task
from oauth2_provider.models import clear_expired

from elbia.accounts.services import sign_in_addresses_forget_stale, tokens_end_expired
from elbia.api.idempotency import idempotency_records_purge_expired


@shared_task
def clear_expired_tokens() -> int:
    """Record the tokens that can no longer be renewed as ended (``expired``), then delete expired access
    tokens and revoked or expired refresh tokens (django-oauth-toolkit's own clean-up)."""
    ended = tokens_end_expired()
    clear_expired()
    return ended


@shared_task
def purge_expired_idempotency_records() -> int:
    """Delete Idempotency-Key records past their 24 hours; running it twice at once is harmless."""
    return idempotency_records_purge_expired()


@shared_task
def forget_stale_sign_in_addresses() -> int:
    """Addresses a user has not signed in from for 90 days are trusted no longer (and the table stays small)."""
    return sign_in_addresses_forget_stale()
