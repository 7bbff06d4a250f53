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

from elbia.accounts.models import (
    PERSONAL_ENDS,
    SIGN_IN_ADDRESS_TRUSTED_FOR,
    Account,
    ApiToken,
    Invitation,
    Membership,
    SignInAddress,
    TokenEnd,
    User,
)
from elbia.accounts.roles import ROLE_SCOPES, Role, role_scopes
from elbia.accounts.token_cache import forget_family, forget_user_tokens
from elbia.accounts.tokens import CLI_APPLICATION, generate_access_token, generate_refresh_token
from elbia.audit.services import audit_record
from elbia.config import parse_rate
from elbia.errors import Conflict, NotAllowed, NotFound


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
    if not staff:
        Membership.objects.create(user=user, account=user.account, role=Role.OWNER)
    return user


@transaction.atomic
def user_create(*, username: str, email: str, password: str) -> User:
    """A person without an account of their own: they join accounts as a member (an invitation, the demo)."""
    user = User(username=username, email=email)
    user.set_password(password)
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


def validate_role_scopes(scopes: list[str], role: str) -> None:
    """A token never holds a scope its creator's role does not allow."""
    beyond = [name for name in scopes if name not in ROLE_SCOPES[role]]
    if beyond:
        label = Role(role).label.lower()
        raise ValidationError(
            {"scopes": [f"Your role in this account ({label}) does not allow the scope '{name}'." for name in beyond]}
        )


@transaction.atomic
def token_issue(
    *,
    user: User,
    scopes: list[str],
    name: str = "API token",
    days: int | None = None,
    rate_limit: str = "",
    account: Account | None = None,
) -> IssuedToken:
    """Issue a named API token (an access token plus its refresh token) acting on ``account`` for ``user``.

    ``account`` defaults to the user's own; the user must be a member of it, and the scopes within their role.
    """
    account_id = account.pk if account is not None else user.account_id
    role = Membership.objects.filter(user=user, account_id=account_id).values_list("role", flat=True).first()
    if account_id is None or role is None:
        raise ValidationError({"user": ["Only members of a customer account hold API tokens."]})
    scopes = validate_scopes(scopes)
    validate_role_scopes(scopes, role)
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
        account_id=account_id,
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
    locked.revoked_by = user.username if reason in PERSONAL_ENDS and user else ""
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
    earlier = ApiToken.objects.filter(
        user=user, account_id=user.account_id, name=name, revoked_at__isnull=True
    ).select_for_update()
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


# --- Members -----------------------------------------------------------------------------------------

LAST_OWNER = "An account keeps at least one owner: make another member an owner first."


def _lock_account(account_id: int) -> None:
    """Serialize changes to an account's members (two owners demoting each other at once leave one)."""
    Account.objects.select_for_update().filter(pk=account_id).values_list("pk", flat=True).get()


def _refuse_losing_last_owner(membership: Membership) -> None:
    if membership.role != Role.OWNER:
        return
    others = Membership.objects.filter(account_id=membership.account_id, role=Role.OWNER).exclude(pk=membership.pk)
    if not others.exists():
        raise Conflict(LAST_OWNER)


def _audit_membership(verb: str, membership: Membership, request) -> None:
    """A change to who is in the account, recorded under the member's username."""
    audit_record(
        action=f"membership.{verb}",
        request=request,
        account=membership.account,
        obj=membership,
        object_id=membership.user.username,
        changed_fields=["role"],
    )


@transaction.atomic
def membership_add(*, account: Account, user: User, role: str, request=None) -> Membership:
    """Make ``user`` a member of ``account`` with ``role`` (an accepted invitation); Conflict if already one."""
    _lock_account(account.pk)
    if Membership.objects.filter(account=account, user=user).exists():
        raise Conflict(f"{user.username} is already a member of {account.name}.")
    membership = Membership(account=account, user=user, role=role)
    membership.full_clean()
    membership.save()
    if user.account_id is None:  # a user without an account of their own opens the dashboard on this one
        user.account = account
        user.save(update_fields=["account"])
    _audit_membership("create", membership, request)
    return membership


@transaction.atomic
def membership_set_role(*, membership: Membership, role: str, request=None) -> Membership:
    """Give a member another role; their tokens are narrowed to it at once (the last owner stays an owner)."""
    if role not in Role.values:
        raise ValidationError({"role": [f"Unknown role '{role}'."]})
    _lock_account(membership.account_id)
    membership = Membership.objects.select_related("user", "account").get(pk=membership.pk)
    if membership.role == role:
        return membership
    if role != Role.OWNER:
        _refuse_losing_last_owner(membership)
    membership.role = role
    membership.save(update_fields=["role"])
    _tokens_fit_role(membership=membership, request=request)
    _audit_membership("update", membership, request)
    return membership


@transaction.atomic
def membership_remove(*, membership: Membership, request=None) -> None:
    """Remove a member from the account: their tokens on it are revoked at once (never the last owner)."""
    _lock_account(membership.account_id)
    membership = Membership.objects.select_related("user", "account").filter(pk=membership.pk).first()
    if membership is None:
        raise NotFound("This member is no longer in the account.")
    _refuse_losing_last_owner(membership)
    user, account = membership.user, membership.account
    for api_token in ApiToken.objects.filter(user=user, account=account, revoked_at__isnull=True):
        token_revoke(api_token=api_token, reason=TokenEnd.MEMBER_REMOVED, request=request)
    _audit_membership("delete", membership, request)
    membership.delete()
    if user.account_id == account.pk:  # their dashboard opens on an account they still belong to, if any
        user.account_id = Membership.objects.filter(user=user).values_list("account_id", flat=True).first()
        user.save(update_fields=["account"])
    forget_user_tokens(user.pk)


def _tokens_fit_role(*, membership: Membership, request=None) -> None:
    """Narrow the member's tokens on the account to their role's scopes; a token left with none is revoked."""
    allowed = ROLE_SCOPES[membership.role]
    tokens = ApiToken.objects.filter(user_id=membership.user_id, account_id=membership.account_id)
    for api_token in tokens.filter(revoked_at__isnull=True).select_for_update():
        kept = [name for name in api_token.scope_list if name in allowed]
        if kept == api_token.scope_list:
            continue
        if not kept:
            token_revoke(api_token=api_token, reason=TokenEnd.ROLE_CHANGED, request=request)
            continue
        api_token.scopes = " ".join(kept)
        api_token.save(update_fields=["scopes"])
        current = RefreshToken.objects.filter(token_family=api_token.token_family).values("access_token_id")
        AccessToken.objects.filter(pk__in=current).update(scope=api_token.scopes)
        forget_family(api_token.token_family)
        audit_record(
            action="apitoken.narrow",
            request=request,
            account=membership.account,
            obj=api_token,
            changed_fields=["scopes"],
        )
    forget_user_tokens(membership.user_id)  # cached entries carry the role: every token of the user is read again


def member_role(*, user: User, account: Account) -> str | None:
    """``user``'s role in ``account``, or None if they are not a member."""
    return Membership.objects.filter(user=user, account=account).values_list("role", flat=True).first()


def scopes_for(*, user: User, account: Account) -> list[str]:
    """The scopes a token ``user`` makes for ``account`` may hold (none if not a member)."""
    return role_scopes(member_role(user=user, account=account))


# --- Invitations ---------------------------------------------------------------------------------------

INVITATION_SALT = "elbia.accounts.invitation"
INVITATION_MAX_AGE = timedelta(days=7)
INVITATION_INVALID = "This invitation link is not valid. Ask the account's owner for a new one."
INVITATION_EXPIRED = "This invitation has expired (invitations last 7 days). Ask the account's owner for a new one."
INVITATION_USED = "This invitation was already used: each invitation link works once."
INVITATION_CANCELLED = "This invitation was cancelled by the account's owner."


def invitation_token(invitation: Invitation) -> str:
    """The signed part of an invitation's link: its id and address, timestamped (valid 7 days)."""
    return signing.dumps({"i": invitation.pk, "e": invitation.email}, salt=INVITATION_SALT)


@transaction.atomic
def invitation_create(*, account: Account, email: str, role: str, request) -> Invitation:
    """Invite ``email`` to join ``account`` with ``role``: a signed link valid 7 days, mailed at once.

    An earlier pending invitation of the same address is cancelled (its link stops working). The mail is
    sent before the transaction ends: if it cannot be sent, no invitation exists.
    """
    email = email.strip()
    if role not in Role.values:
        raise ValidationError({"role": [f"Unknown role '{role}'."]})
    if Membership.objects.filter(account=account, user__email__iexact=email).exists():
        raise ValidationError({"email": [f"{email} is already a member of {account.name}."]})
    now = timezone.now()
    Invitation.objects.for_account(account).filter(
        email__iexact=email, accepted_at__isnull=True, cancelled_at__isnull=True
    ).update(cancelled_at=now)
    inviter = request.user
    invitation = Invitation(
        account=account,
        email=email,
        role=role,
        invited_by_id=inviter.pk,
        created_at=now,
        expires_at=now + INVITATION_MAX_AGE,
    )
    invitation.full_clean()
    invitation.save()
    audit_record(
        action="invitation.create",
        request=request,
        account=account,
        obj=invitation,
        object_id=invitation.email,
        changed_fields=["email", "role"],
    )
    link = request.build_absolute_uri(reverse("invitation", args=[invitation_token(invitation)]))
    send_mail(
        subject=f"{inviter.username} invited you to {account.name} on Elbia Lambda",
        message=f"Hello,\n\n{inviter.username} invited you to join the account “{account.name}” on Elbia Lambda "
        f"as {Role(role).label.lower()}.\n\nOpen this link within 7 days to accept (it works once):\n{link}\n\n"
        "If you do not know why you received this, ignore it: nothing happens unless the link is opened.",
        from_email=None,
        recipient_list=[email],
    )
    return invitation


@transaction.atomic
def invitation_cancel(*, invitation: Invitation, request=None) -> bool:
    """Cancel a pending invitation (its link stops working); False if it was no longer pending."""
    updated = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, cancelled_at__isnull=True).update(
        cancelled_at=timezone.now()
    )
    if updated:
        audit_record(
            action="invitation.cancel",
            request=request,
            account=invitation.account,
            obj=invitation,
            object_id=invitation.email,
        )
    return bool(updated)


def invitation_from_token(token: str, *, lock: bool = False) -> Invitation:
    """The invitation a link names, if it can still be accepted; else NotAllowed saying why (tampered,
    expired, used, cancelled)."""
    try:
        data = signing.loads(token, salt=INVITATION_SALT, max_age=INVITATION_MAX_AGE)
    except signing.SignatureExpired:
        raise NotAllowed(INVITATION_EXPIRED) from None
    except signing.BadSignature:
        raise NotAllowed(INVITATION_INVALID) from None
    invitations = Invitation.objects.select_related("account", "invited_by")
    if lock:
        invitations = invitations.select_for_update(of=("self",))
    invitation = invitations.filter(pk=data.get("i"), email=data.get("e")).first() if isinstance(data, dict) else None
    if invitation is None:
        raise NotAllowed(INVITATION_INVALID)
    refusal = {"accepted": INVITATION_USED, "cancelled": INVITATION_CANCELLED, "expired": INVITATION_EXPIRED}
    if invitation.status in refusal:
        raise NotAllowed(refusal[invitation.status])
    return invitation


@transaction.atomic
def invitation_accept(*, token: str, user: User, request=None) -> Membership:
    """``user`` accepts the invitation of a link: they join its account with its role, and the link is used up."""
    invitation = invitation_from_token(token, lock=True)
    membership = membership_add(account=invitation.account, user=user, role=invitation.role, request=request)
    invitation.accepted_at, invitation.accepted_by = timezone.now(), user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        action="invitation.accept",
        request=request,
        account=invitation.account,
        obj=invitation,
        object_id=invitation.email,
    )
    return membership


@transaction.atomic
def invitation_sign_up(*, token: str, username: str, password: str, request=None) -> User:
    """A newcomer accepts an invitation by signing up: a user with the invited address (confirmed by the link)."""
    invitation = invitation_from_token(token, lock=True)
    user = user_create(username=username, email=invitation.email, password=password)
    user.email_verified_at = timezone.now()  # the link reached this address
    user.save(update_fields=["email_verified_at"])
    invitation_accept(token=token, user=user, request=request)
    return user
