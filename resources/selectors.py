"""Reads for resources; every queryset starts from the account."""

from django.db.models import F, Q, QuerySet

from elbia.accounts.models import Account
from resources.models import Resource, ResourceStatus

ORDERINGS: dict[str, tuple[str, str]] = {
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
}
DEFAULT_ORDERING = "-created_at"


def resource_list(
    *,
    account: Account,
    type: str | None = None,
    region: str | None = None,
    status: str | None = None,
    condition: Q | None = None,
    include_deleted: bool = False,
    ordering: str = DEFAULT_ORDERING,
) -> QuerySet[Resource]:
    """The account's resources, newest first by default (ties broken by id).

    Deleted resources are left out unless ``status`` or ``include_deleted`` asks
    for them (the API sets ``include_deleted`` when its JSON filter names ``status``).
    ``condition`` is an already validated ``Q`` (the compiled JSON filter).
    """
    resources = Resource.objects.for_account(account)
    if type is not None:
        resources = resources.filter(type=type)
    if region is not None:
        resources = resources.filter(region=region)
    if status is not None:
        resources = resources.filter(status=status)
    elif not include_deleted:
        resources = resources.exclude(status=ResourceStatus.DELETED)
    if condition is not None:
        resources = resources.filter(condition)
    return resources.order_by(*ORDERINGS[ordering])


def resource_get(*, account: Account, public_id: str) -> Resource:
    """One of the account's resources by its public ID (deleted ones included); raises ``Resource.DoesNotExist``."""
    return Resource.objects.for_account(account).get(public_id=public_id)


# What a resource's API representation reads (resources.api.serializers.ResourceSerializer.represent).
PAGE_COLUMNS = (
    "id", "public_id", "account_id", "type", "name", "region", "instance_type", "vpc_id", "memory_mb", "tags",
    "status", "failure_reason", "created_at", "updated_at", "provisioning_started_at", "provisioned_at",
    "last_execution",
)  # fmt: skip


def lean_page(resources: QuerySet[Resource]) -> QuerySet[Resource]:
    """``resources`` fetching only the columns a list page returns, and the VPC's public id by a join.

    No second model is built per row (the VPC's ``public_id`` arrives as ``vpc_public_id``); for
    ``expand=vpc`` keep ``select_related("vpc")`` instead. The ordering is kept, so keyset pages work.
    """
    return resources.select_related(None).only(*PAGE_COLUMNS).annotate(vpc_public_id=F("vpc__public_id"))
