"""Accounts (the tenants), their users, and the API tokens they hold."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class Account(models.Model):
    """A customer: owns resources, functions, usage and invoices; has one or more users."""

    name = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    """A person who signs in to the dashboard or holds API tokens; staff may have no account."""

    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="users")


class AccountScopedQuerySet(models.QuerySet):
    """The queryset of every model owned by an account: reads start from ``for_account``."""

    def for_account(self, account: Account) -> "AccountScopedQuerySet":
        """Only ``account``'s rows: another account's objects cannot be reached from here."""
        return self.filter(account=account)


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
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

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
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "active"


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
