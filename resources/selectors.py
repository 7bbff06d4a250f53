"""Reads of resources: every queryset starts from the account."""

from elbia.accounts.models import Account
from resources.models import Resource, ResourceQuerySet, ResourceStatus


def resource_list(
    *, account: Account, status: str | None = None, type: str | None = None, region: str | None = None
) -> ResourceQuerySet:
    """The account's resources, newest first; deleted ones only when ``status`` asks for them.

    Values must already be validated (choices of ``ResourceStatus``, ``ResourceType``, the region catalog).
    """
    queryset = Resource.objects.for_account(account)
    queryset = queryset.filter(status=status) if status else queryset.exclude(status=ResourceStatus.DELETED)
    if type:
        queryset = queryset.filter(type=type)
    if region:
        queryset = queryset.filter(region=region)
    return queryset.order_by("-created_at", "-id")
