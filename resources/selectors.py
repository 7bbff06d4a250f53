"""Reads for resources; every queryset starts from the account."""

from django.db.models import QuerySet

from elbia.accounts.models import Account
from resources.models import LIVE_STATUSES, Resource, ResourceStatus, ResourceType

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


def vpc_live_resources(*, account: Account, vpc: Resource, limit: int) -> list[Resource]:
    """Up to ``limit`` of the live resources in one of the account's VPCs, newest first: one query."""
    members = Resource.objects.for_account(account).filter(vpc=vpc, status__in=LIVE_STATUSES)
    return list(members.order_by("-created_at", "-id")[:limit])


def vpc_choices(*, account: Account) -> QuerySet[Resource]:
    """The account's VPCs a new resource may join (not failed, deleting or deleted), by region and name."""
    usable = (ResourceStatus.PENDING, ResourceStatus.PROVISIONING, ResourceStatus.ACTIVE)
    vpcs = Resource.objects.for_account(account).filter(type=ResourceType.VPC, status__in=usable)
    return vpcs.order_by("region", "name")
