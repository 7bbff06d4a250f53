"""Writes for accounts and API tokens: the API, dashboard, admin and commands all call these."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application, RefreshToken, set_token_value

from elbia.accounts.models import SIGN_IN_ADDRESS_TRUSTED_FOR, Account, ApiToken, SignInAddress, TokenEnd, User
from elbia.accounts.token_cache import forget_family
from elbia.accounts.tokens import CLI_APPLICATION, generate_access_token, generate_refresh_token
from elbia.audit.services import audit_record
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
def token_revoke(*, api_token: ApiToken, reason: TokenEnd, request=None) -> bool:
    """End a token for ``reason``: its access tokens stop working and its refresh tokens can no longer renew.

    Every way a token ends comes here (its owner or staff revoking it, a reused refresh token,
    ``/oauth/revoke_token/``, its user deactivated, its refresh token expired), so each writes the same
    record (``revoked_at``, ``revoked_reason``, ``revoked_by``) and the same audit event, and anything that
    remembers tokens (a cache of the bearer lookup) has this one place to forget them. Returns False when
    the token had already ended (the first reason stays).
    """
    locked = ApiToken.objects.select_for_update().select_related("user").get(pk=api_token.pk)
    RefreshToken.revoke_family(locked.token_family)  # even if ended: a renewal may have raced the first end
    forget_family(locked.token_family)  # every web process stops trusting its cached tokens now
    if locked.revoked_at is not None:
        return False
    user = getattr(request, "user", None)
    locked.revoked_at = timezone.now()
    locked.revoked_reason = reason
    locked.revoked_by = user.username if reason in (TokenEnd.BY_USER, TokenEnd.BY_STAFF) and user else ""
    locked.save(update_fields=["revoked_at", "revoked_reason", "revoked_by"])
    for field in ("revoked_at", "revoked_reason", "revoked_by"):
        setattr(api_token, field, getattr(locked, field))
    audit_record(
        action="apitoken.expire" if reason == TokenEnd.EXPIRED else "apitoken.revoke",
        request=request,
        account=locked.account,
        obj=locked,
        changed_fields=["revoked_at", "revoked_reason"],
    )
    return True


def token_revoke_family(*, token_family, reason: TokenEnd, request=None) -> bool:
    """``token_revoke`` for the token an OAuth token family belongs to (a family without one is revoked as is)."""
    api_token = ApiToken.objects.filter(token_family=token_family).first()
    if api_token is None:
        RefreshToken.revoke_family(token_family)
        return False
    return token_revoke(api_token=api_token, reason=reason, request=request)


def tokens_end_expired(*, now: datetime | None = None) -> int:
    """Record as ended (``expired``) the tokens whose refresh token can no longer renew them; returns how many.

    A refresh token lives REFRESH_TOKEN_EXPIRE_SECONDS past its access token's expiry (django-oauth-toolkit),
    and ``expires_at`` follows the current access token.
    """
    refresh_lifetime = timedelta(seconds=settings.OAUTH2_PROVIDER["REFRESH_TOKEN_EXPIRE_SECONDS"])
    cutoff = (now or timezone.now()) - refresh_lifetime
    ended = 0
    for api_token in ApiToken.objects.filter(revoked_at__isnull=True, expires_at__lte=cutoff).iterator():
        ended += token_revoke(api_token=api_token, reason=TokenEnd.EXPIRED)
    return ended


@transaction.atomic
def user_set_active(*, user: User, active: bool, request=None) -> User:
    """Activate or deactivate a user; deactivating revokes every token they hold, at once."""
    user.is_active = active
    user.save(update_fields=["is_active"])
    if not active:
        for api_token in ApiToken.objects.filter(user=user, revoked_at__isnull=True):
            token_revoke(api_token=api_token, reason=TokenEnd.USER_DEACTIVATED, request=request)
    return user


@transaction.atomic
def token_replace(*, user: User, scopes: list[str], name: str) -> IssuedToken:
    """Issue ``user`` a token named ``name`` and revoke their earlier active ones of that name (one at a time)."""
    earlier = ApiToken.objects.filter(user=user, name=name, revoked_at__isnull=True).select_for_update()
    for api_token in earlier:
        token_revoke(api_token=api_token, reason=TokenEnd.REPLACED)
    return token_issue(user=user, scopes=scopes, name=name)


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
    """Keep a token's expiry and scopes current after the refresh grant issued a new access token.

    A refresh may narrow the scopes (``scope=...``): the token then lists what it can do now.
    """
    family = RefreshToken.objects.filter(access_token=access_token).values("token_family")
    scopes = [name for name in settings.SCOPES if name in access_token.scope.split()]
    ApiToken.objects.filter(token_family__in=family).update(expires_at=access_token.expires, scopes=" ".join(scopes))


def sign_in_address_record(*, user: User, address: str) -> None:
    """Remember that ``user`` signed in successfully from ``address`` (elbia.accounts.throttling)."""
    SignInAddress.objects.update_or_create(user=user, address=address, defaults={"last_seen_at": timezone.now()})


def sign_in_addresses_forget_stale() -> int:
    """Forget addresses not signed in from for ``SIGN_IN_ADDRESS_TRUSTED_FOR``; returns how many."""
    deleted, _ = SignInAddress.objects.filter(last_seen_at__lt=timezone.now() - SIGN_IN_ADDRESS_TRUSTED_FOR).delete()
    return deleted


# --- Email addresses ---------------------------------------------------------------------------------

EMAIL_VERIFICATION_SALT = "elbia.accounts.email-verification"
EMAIL_VERIFICATION_MAX_AGE = timedelta(days=3)


def email_verification_send(*, user: User, request) -> None:
    """Mail ``user`` a signed link (valid 3 days) that confirms their address: all an unconfirmed address gets."""
    token = signing.dumps({"user": user.pk, "email": user.email}, salt=EMAIL_VERIFICATION_SALT)
    link = request.build_absolute_uri(reverse("verify-email", args=[token]))
    send_mail(
        subject="Confirm your email address for Elbia Lambda",
        message=f"Hello {user.username},\n\nopen this link within 3 days to confirm that {user.email} is yours:\n"
        f"{link}\n\nIf you did not sign up for Elbia Lambda, ignore this message: nothing more will be sent.",
        from_email=None,
        recipient_list=[user.email],
    )


@transaction.atomic
def email_verify(*, token: str) -> User | None:
    """Confirm the address a verification link was sent to; None for a bad, expired or outdated link."""
    try:
        data = signing.loads(token, salt=EMAIL_VERIFICATION_SALT, max_age=EMAIL_VERIFICATION_MAX_AGE)
    except signing.BadSignature:
        return None
    user = User.objects.select_for_update().filter(pk=data.get("user"), email=data.get("email")).first()
    if user is not None and user.email_verified_at is None:
        user.email_verified_at = timezone.now()
        user.save(update_fields=["email_verified_at"])
    return user


def mail_user(*, user: User, subject: str, message: str) -> bool:
    """Mail ``user`` at their address once they confirmed it (else nothing is sent); True if sent."""
    if user.email_verified_at is None or not user.email:
        return False
    send_mail(subject=subject, message=message, from_email=None, recipient_list=[user.email])
    return True
