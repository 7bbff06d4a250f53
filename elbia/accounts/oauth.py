"""The OAuth 2.0 endpoints (django-oauth-toolkit) with Elbia's rules for how tokens end.

- ``TokenView`` (``POST /oauth/token/``) runs in one transaction, and ``Validator`` locks the presented
  refresh token's rows first: of concurrent refreshes with the same refresh token exactly one rotates
  it; the others wait for it, then find the token used, which is a reuse (RFC 9700 4.14.2): they get
  ``invalid_grant`` and the whole family is revoked, the winner's new token included.
- Every end goes through ``token_revoke`` (the record, the reason, the audit event): a reused refresh
  token (``refresh_reused``), and ``POST /oauth/revoke_token/`` (``oauth_revoke``), which ends the whole
  credential whichever of its tokens is presented.
- A deactivated user's refresh token is refused (``invalid_grant``).
"""

import hashlib

from django.db import transaction
from oauth2_provider import views as oauth_views
from oauth2_provider.models import RefreshToken
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings

from elbia.accounts.models import TokenEnd
from elbia.accounts.services import token_revoke_family


def _checksum(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Validator(OAuth2Validator):
    """django-oauth-toolkit's validator (``OAUTH2_VALIDATOR_CLASS``), ending tokens through ``token_revoke``."""

    def validate_refresh_token(self, refresh_token, client, request, *args, **kwargs) -> bool:
        # Lock the token's rows: a concurrent refresh with the same token waits here until this one commits.
        rows = list(
            RefreshToken.objects.select_for_update()
            .filter(token_checksum=_checksum(refresh_token))
            .values_list("revoked", "token_family")
        )
        valid = super().validate_refresh_token(refresh_token, client, request, *args, **kwargs)
        if not valid:
            family = next((family for _, family in rows if family), None)
            used = rows and all(revoked is not None for revoked, _ in rows)
            if used and family and oauth2_settings.REFRESH_TOKEN_REUSE_PROTECTION:
                token_revoke_family(token_family=family, reason=TokenEnd.REFRESH_REUSED)
            return False
        user = getattr(request, "user", None)
        return user is not None and user.is_active

    def revoke_token(self, token, token_type_hint, request, *args, **kwargs) -> None:
        application_pk = getattr(request.client, "pk", None)
        if application_pk is None:
            return
        checksum = _checksum(token)
        families = RefreshToken.objects.filter(application_id=application_pk).values_list("token_family", flat=True)
        family = (
            families.filter(token_checksum=checksum).first()
            or families.filter(access_token__token_checksum=checksum).first()
        )
        if family is None:
            super().revoke_token(token, token_type_hint, request, *args, **kwargs)
        else:
            token_revoke_family(token_family=family, reason=TokenEnd.OAUTH_REVOKE)


class TokenView(oauth_views.TokenView):
    """``POST /oauth/token/`` in one transaction, so the refresh token stays locked until its successor is stored."""

    def post(self, request, *args, **kwargs):
        with transaction.atomic():
            return super().post(request, *args, **kwargs)


class RevokeTokenView(oauth_views.RevokeTokenView):
    """``POST /oauth/revoke_token/`` (RFC 7009): ends the whole credential the presented token belongs to."""

    def post(self, request, *args, **kwargs):
        with transaction.atomic():
            return super().post(request, *args, **kwargs)
