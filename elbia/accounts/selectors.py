"""Reads of API tokens: every queryset starts from the account."""

from elbia.accounts.models import ApiToken, ApiTokenQuerySet, User


def api_token_list(*, user: User) -> ApiTokenQuerySet:
    """The API tokens ``user`` generated, newest first (never another account's, never another member's)."""
    return ApiToken.objects.for_account(user.account).filter(user=user).order_by("-created_at", "-id")
