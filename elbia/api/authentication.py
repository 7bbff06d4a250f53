"""Bearer-token authentication for /v1: django-oauth-toolkit tokens, looked up by their hash."""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import OuterRef, Subquery
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from elbia.accounts.models import Account, ApiToken
from elbia.api.throttling import check_bad_token_budget, record_bad_token

# last_used_at is a hint for people, not an audit record: write it at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class TokenContext:
    """What a request's token grants: ``request.auth`` on every authenticated /v1 request."""

    account: Account
    scopes: frozenset[str]
    access_token_id: int
    api_token_id: int | None
    api_token_name: str
    token_family: uuid.UUID | None
    rate_limit: str


def _token_rows():
    api_tokens = ApiToken.objects.filter(token_family=OuterRef("refresh_token__token_family"))
    return AccessToken.objects.select_related("user__account").annotate(
        token_family=Subquery(api_tokens.values("token_family")[:1]),
        api_token_id=Subquery(api_tokens.values("id")[:1]),
        api_token_name=Subquery(api_tokens.values("name")[:1]),
        api_token_rate_limit=Subquery(api_tokens.values("rate_limit")[:1]),
        api_token_last_used_at=Subquery(api_tokens.values("last_used_at")[:1]),
    )


def bearer_token(request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; ``None`` without a header; 401 for any other scheme."""
    header = get_authorization_header(request)
    if not header:
        return None
    scheme, _, value = header.partition(b" ")
    value = value.strip()
    if scheme.lower() != b"bearer" or not value or b" " in value or len(value) > 512:
        raise AuthenticationFailed()
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationFailed() from None


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>``; tokens in the query string are refused (RFC 9700)."""

    def authenticate(self, request):
        if "access_token" in request.query_params:
            raise AuthenticationFailed()
        token = bearer_token(request)
        if token is None:
            return None
        check_bad_token_budget(request)  # an IP that sent too many bad tokens gets a 429 before any lookup
        checksum = hashlib.sha256(token.encode("ascii")).hexdigest()
        row = _token_rows().filter(token_checksum=checksum).first()
        if row is None or row.is_expired() or row.user is None or not row.user.is_active or not row.user.account:
            record_bad_token(request)
            raise AuthenticationFailed()
        account = row.user.account
        self._touch(row)
        return row.user, TokenContext(
            account=account,
            scopes=frozenset(row.scope.split()),
            access_token_id=row.id,
            api_token_id=row.api_token_id,
            api_token_name=row.api_token_name or "",
            token_family=row.token_family,
            rate_limit=row.api_token_rate_limit or "",
        )

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="elbia"'

    @staticmethod
    def _touch(row) -> None:
        now = timezone.now()
        last_used = row.api_token_last_used_at
        if row.api_token_id and (last_used is None or now - last_used >= LAST_USED_RESOLUTION):
            ApiToken.objects.filter(id=row.api_token_id).update(last_used_at=now)
