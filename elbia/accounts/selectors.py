"""Reads of API tokens: every queryset starts from the account."""

from elbia.accounts.models import AccountScopedQuerySet, ApiToken, User


def api_token_list(*, user: User) -> AccountScopedQuerySet:
    """The API tokens ``user`` generated, newest first (never another account's, never another member's)."""
    return ApiToken.objects.for_account(user.account).filter(user=user).order_by("-created_at", "-id")
