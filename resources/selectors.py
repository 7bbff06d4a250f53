"""Reads for resources; every queryset starts from the account."""

from django.db.models import F, QuerySet

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


# What a resource's API representation reads (resources.api.serializers.ResourceSerializer.represent).
PAGE_COLUMNS = (
    "id", "public_id", "account_id", "type", "name", "region", "instance_type", "vpc_id", "memory_mb", "tags",
    "status", "failure_reason", "created_at", "updated_at", "provisioning_started_at", "provisioned_at",
    "last_execution", "provider_id",
)  # fmt: skip


def lean_page(resources: QuerySet[Resource]) -> QuerySet[Resource]:
    """``resources`` fetching only the columns a list page returns, and the VPC's public id by a join.

    No second model is built per row (the VPC's ``public_id`` arrives as ``vpc_public_id``); for
    ``expand=vpc`` keep ``select_related("vpc")`` instead. The ordering is kept, so keyset pages work.
    """
    return resources.select_related(None).only(*PAGE_COLUMNS).annotate(vpc_public_id=F("vpc__public_id"))
