"""Reads of accounts and API tokens: every queryset starts from the account."""

from elbia.accounts.models import Account, AccountScopedQuerySet, ApiToken, User


def api_token_list(*, user: User) -> AccountScopedQuerySet:
    """The API tokens ``user`` generated, newest first (never another account's, never another member's)."""
    return ApiToken.objects.for_account(user.account).filter(user=user).order_by("-created_at", "-id")


def account_contact_email(*, account: Account) -> str:
    """Where an account is reached (invoices are billed to it): the email of its first user."""
    return account.users.order_by("date_joined", "id").values_list("email", flat=True).first() or ""
