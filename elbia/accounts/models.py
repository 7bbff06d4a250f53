"""Accounts (the tenants), their users, and the API tokens they hold."""

from datetime import timedelta

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from elbia.accounts.roles import Role


class Account(models.Model):
    """A customer: owns resources, functions, usage and invoices; has one or more users."""

    name = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who signs in to the dashboard or holds API tokens; staff may have no account.

    ``account`` is the account the user signed up with (where the dashboard opens first); what they may
    do in any account, that one included, is their ``Membership`` of it.
    """

    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="users")
    # Set when the user opened the link mailed to ``email``: nothing else is sent to an unverified address.
    email_verified_at = models.DateTimeField(null=True, blank=True, editable=False)


#: How long an address a user signed in from stays trusted after its last sign-in there.
SIGN_IN_ADDRESS_TRUSTED_FOR = timedelta(days=90)


class Membership(models.Model):
    """A user's place in an account: their role there (elbia.accounts.roles says what each allows)."""

    # The unique (user, account) index serves lookups by user: no index of its own.
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["user", "account"], name="membership_unique_user_account")]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role})"


class AccountScopedQuerySet(models.QuerySet):
    """The queryset of every model owned by an account: reads start from ``for_account``."""

    def for_account(self, account: Account) -> "AccountScopedQuerySet":
        """Only ``account``'s rows: another account's objects cannot be reached from here."""
        return self.filter(account=account)


class Invitation(models.Model):
    """An owner's invitation for ``email`` to join ``account`` with ``role``: a signed link, usable once, for 7 days.

    The link carries the invitation's id, signed (``elbia.accounts.services.invitation_link``); this row
    says whether it may still be used: not accepted, not cancelled, not expired.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cancelled_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.email} to {self.account} ({self.role})"

    @property
    def status(self) -> str:
        """``accepted``, ``cancelled``, ``expired`` or ``pending``."""
        if self.accepted_at:
            return "accepted"
        if self.cancelled_at:
            return "cancelled"
        return "expired" if self.expires_at <= timezone.now() else "pending"


class SignInAddress(models.Model):
    """A client address (an IPv4 address or an IPv6 /64) ``user`` has signed in from successfully.

    Failed sign-ins from such an address do not count against the user's own limit, so an attacker
    elsewhere cannot lock the owner out (elbia.accounts.throttling).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+", db_index=False)
    address = models.CharField(max_length=64)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "address"], name="signin_address_unique_user")]

    def __str__(self) -> str:
        return f"{self.address} ({self.user_id})"


class TokenEnd(models.TextChoices):
    """Why a token stopped working: every way a token ends goes through ``token_revoke`` with one of these."""

    BY_USER = "by_user", "revoked by its owner"
    BY_STAFF = "by_staff", "revoked by staff"
    REFRESH_REUSED = "refresh_reused", "refresh token reused"
    OAUTH_REVOKE = "oauth_revoke", "revoked through /oauth/revoke_token/"
    USER_DEACTIVATED = "user_deactivated", "its user was deactivated"
    EXPIRED = "expired", "expired"
    REPLACED = "replaced", "replaced by a newer token of its name"
    BY_OWNER = "by_owner", "revoked by an account owner"
    MEMBER_REMOVED = "member_removed", "its creator left the account"
    ROLE_CHANGED = "role_changed", "its creator's new role allows none of its scopes"


#: Ends a person chose: the token records who (``revoked_by``).
PERSONAL_ENDS = (TokenEnd.BY_USER, TokenEnd.BY_STAFF, TokenEnd.BY_OWNER)


class ApiToken(models.Model):
    """A named API credential: one OAuth token family (an access token and the refresh tokens that renew it).

    The family identity survives renewal, so the name, the rate limit and the
    request budget stay with the credential however often it is refreshed.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_tokens")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    scopes = models.CharField(max_length=255)
    token_family = models.UUIDField(unique=True, editable=False)
    rate_limit = models.CharField(
        max_length=32, blank=True, help_text="Own request budget, e.g. 100/minute; empty uses ELBIA_RATE_LIMIT."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(help_text="When the current access token expires.")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_ip = models.GenericIPAddressField(
        null=True, blank=True, editable=False, help_text="The client address of its latest use (as of last_used_at)."
    )
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_reason = models.CharField(max_length=20, choices=TokenEnd.choices, blank=True, editable=False)
    revoked_by = models.CharField(max_length=150, blank=True, editable=False, help_text="Who revoked it, if someone.")

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"

    @property
    def scope_list(self) -> list[str]:
        """The granted scopes, in the order of settings.SCOPES."""
        return self.scopes.split()

    @property
    def status(self) -> str:
        """``revoked``, ``expired`` or ``active``, as the dashboard and the admin show it."""
        if self.revoked_at:
            return "expired" if self.revoked_reason == TokenEnd.EXPIRED else "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"

    @property
    def status_detail(self) -> str:
        """The status with why a token ended: "revoked by alice", "revoked: refresh token reused", "expired"."""
        if not self.revoked_at:
            return self.status
        if self.revoked_reason in PERSONAL_ENDS and self.revoked_by:
            return f"revoked by {self.revoked_by}"
        if self.revoked_reason == TokenEnd.EXPIRED:
            return "expired"
        return f"revoked: {TokenEnd(self.revoked_reason).label}" if self.revoked_reason else "revoked"


class IdempotencyRecord(models.Model):
    """One Idempotency-Key of an account: claimed while its request runs, then holding the response to replay.

    A row without ``completed_at`` is a request still in flight. Kept 24 hours
    (elbia.api.idempotency); expired rows are purged periodically.
    """

    # The unique (account, key) index serves lookups by account: no index of its own.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, path and canonical body.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The response's JSON document, as first sent.")
    response_headers = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "key"], name="idempotency_unique_account_key")]

    def __str__(self) -> str:
        return f"{self.key} ({self.account_id})"


class RateLimitWindow(models.Model):
    """One request budget's current window, kept in the database when no Redis is configured (``make run``).

    Every web process charges it with one atomic UPSERT (elbia.api.throttling), so several gunicorn workers
    share one budget per token. Rows of ended windows are pruned as requests come.
    """

    key = models.CharField(max_length=200, primary_key=True)
    ends_at_ms = models.BigIntegerField(help_text="When the window ends, in epoch milliseconds.")
    count = models.PositiveIntegerField(help_text="Requests charged in the window (at most the limit plus one).")

    def __str__(self) -> str:
        return self.key
