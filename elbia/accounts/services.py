"""Writes for accounts and API tokens: the API, dashboard, admin and commands all call these."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken, set_token_value

from elbia.accounts.models import Account, ApiToken, User
from elbia.accounts.token_cache import forget_family
from elbia.accounts.tokens import CLI_APPLICATION, generate_access_token, generate_refresh_token
from elbia.config import parse_rate


@dataclass(frozen=True)
class IssuedToken:
    """A freshly issued credential: the only moment its secrets are known in clear."""

    api_token: ApiToken
    access_token: str
    refresh_token: str
    expires_at: datetime
    scopes: list[str]
    client_id: str


@transaction.atomic
def account_create(*, username: str, email: str, password: str, staff: bool = False, account_name: str = "") -> User:
    """Create a customer account with its first user (or, with ``staff``, a staff user)."""
    user = User(username=username, email=email, is_staff=staff, is_superuser=staff)
    user.set_password(password)
    if not staff:
        account = Account(name=account_name or username)
        account.full_clean()
        account.save()
        user.account = account
    user.full_clean()
    user.save()
    return user


@transaction.atomic
def account_rename(*, account: Account, name: str) -> Account:
    """Rename an account (staff, in the admin)."""
    account.name = name
    account.full_clean()
    account.save(update_fields=["name"])
    return account


def cli_application() -> Application:
    """The built-in public OAuth client that issues and renews Elbia API tokens (made again if it was removed)."""
    application, _ = Application.objects.get_or_create(client_id=settings.ELBIA_CLI_CLIENT_ID, defaults=CLI_APPLICATION)
    return application


def validate_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(settings.SCOPES))
    if unknown:
        raise ValidationError({"scopes": [f"Unknown scope '{name}'." for name in unknown]})
    if not scopes:
        raise ValidationError({"scopes": ["Choose at least one scope."]})
    return [name for name in settings.SCOPES if name in scopes]


def validate_rate_limit(rate_limit: str) -> None:
    """A token's own request budget: empty (use ELBIA_RATE_LIMIT) or ``N/second|minute|hour|day``."""
    if rate_limit:
        try:
            parse_rate(rate_limit)
        except ValueError as exc:
            raise ValidationError({"rate_limit": [str(exc)]}) from None


@transaction.atomic
def token_issue(
    *, user: User, scopes: list[str], name: str = "API token", days: int | None = None, rate_limit: str = ""
) -> IssuedToken:
    """Issue a named API token (an access token plus its refresh token) for ``user``'s account."""
    if user.account_id is None:
        raise ValidationError({"user": ["Only users of a customer account hold API tokens."]})
    scopes = validate_scopes(scopes)
    validate_rate_limit(rate_limit)
    days = settings.ELBIA_TOKEN_DAYS if days is None else days
    if not 1 <= days <= 365:
        raise ValidationError({"days": ["Choose between 1 and 365 days."]})

    expires_at = timezone.now() + timedelta(days=days)
    application = cli_application()
    family = uuid.uuid4()
    access_value, refresh_value = generate_access_token(), generate_refresh_token()

    access = AccessToken(user=user, application=application, expires=expires_at, scope=" ".join(scopes))
    set_token_value(access, access_value)
    access.save()
    refresh = RefreshToken(user=user, application=application, access_token=access, token_family=family)
    set_token_value(refresh, refresh_value)
    refresh.save()

    api_token = ApiToken(
        account_id=user.account_id,
        user=user,
        name=name,
        scopes=" ".join(scopes),
        token_family=family,
        rate_limit=rate_limit,
        expires_at=expires_at,
    )
    api_token.full_clean()
    api_token.save()
    return IssuedToken(
        api_token=api_token,
        access_token=access_value,
        refresh_token=refresh_value,
        expires_at=expires_at,
        scopes=scopes,
        client_id=application.client_id,
    )


@transaction.atomic
def token_revoke(*, api_token: ApiToken) -> ApiToken:
    """Revoke a token at once: its access tokens stop working and its refresh tokens can no longer renew."""
    RefreshToken.revoke_family(api_token.token_family)
    forget_family(api_token.token_family)  # every web process stops trusting its cached tokens now
    if api_token.revoked_at is None:
        api_token.revoked_at = timezone.now()
        api_token.save(update_fields=["revoked_at"])
    return api_token


@transaction.atomic
def token_set_rate_limit(*, api_token: ApiToken, rate_limit: str) -> ApiToken:
    """Give a token its own request budget (empty: the default); it applies from the token's next request."""
    validate_rate_limit(rate_limit)
    api_token.rate_limit = rate_limit
    api_token.full_clean()
    api_token.save(update_fields=["rate_limit"])
    forget_family(api_token.token_family)  # the next request reads the new limit
    return api_token


def token_record_renewal(*, access_token: AccessToken) -> None:
    """Keep a token's expiry current after the refresh grant issued a new access token."""
    family = RefreshToken.objects.filter(access_token=access_token).values("token_family")
    ApiToken.objects.filter(token_family__in=family).update(expires_at=access_token.expires)
