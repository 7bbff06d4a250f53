"""Keeps ApiToken.expires_at in step with renewals made at the OAuth token endpoint."""

from django.dispatch import receiver
from oauth2_provider.signals import app_authorized

from elbia.accounts.services import token_record_renewal


@receiver(app_authorized)
def record_renewal(sender, request, token, **kwargs) -> None:
    token_record_renewal(access_token=token)
