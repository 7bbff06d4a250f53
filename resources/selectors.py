"""Reads for resources; every queryset starts from the account."""

from django.db.models import QuerySet

from elbia.accounts.models import Account
from resources.models import Resource

ORDERINGS: dict[str, tuple[str, str]] = {
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
}
DEFAULT_ORDERING = "-created_at"


def resource_list(*, account: Account) -> QuerySet[Resource]:
    """The account's resources, deleted ones included (``resources.filtersets`` filters, hides and orders them)."""
    return Resource.objects.for_account(account)


def resource_get(*, account: Account, public_id: str) -> Resource:
    """One of the account's resources by its public ID (deleted ones included); raises ``Resource.DoesNotExist``."""
    return Resource.objects.for_account(account).get(public_id=public_id)
