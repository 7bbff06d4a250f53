from celery import shared_task
from oauth2_provider.models import clear_expired


@shared_task
def clear_expired_tokens() -> None:
    """Delete expired access tokens and revoked or expired refresh tokens (django-oauth-toolkit's own clean-up)."""
    clear_expired()
