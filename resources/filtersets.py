"""The filters of the resource lists (``GET /v1/resources`` and the dashboard's Resources page).

Each filterable field is declared here once: the API reads it, the OpenAPI document describes it and the
dashboard renders it. Deleted resources are listed only when a filter asks for a status.
"""

import django_filters

from elbia.api.filtering import JsonFilterFilter
from elbia.api.json_filter import FilterField, JsonFilter
from elbia.filtersets import ListFilterSet, OrderingFilter, value_choices
from resources.catalog import REGIONS
from resources.models import Resource, ResourceStatus, ResourceType
from resources.selectors import DEFAULT_ORDERING, ORDERINGS

RESOURCE_FILTER = JsonFilter(
    fields={
        "id": FilterField("public_id"),
        "type": FilterField("type", kind="choice", choices=tuple(ResourceType.values)),
        "region": FilterField("region", kind="choice", choices=tuple(REGIONS)),
        "status": FilterField("status", kind="choice", choices=tuple(ResourceStatus.values)),
        "instance_type": FilterField("instance_type"),
        "vpc": FilterField("vpc__public_id"),
        "name": FilterField("name"),
        "created_at": FilterField("created_at", kind="datetime"),
    },
    tags_field="tags",
)


class ResourceFilterSet(ListFilterSet):
    """Resources by status, type and region, a JSON ``filter``, and ``ordering``."""

    hidden_status = ResourceStatus.DELETED

    status = django_filters.ChoiceFilter(
        choices=value_choices(ResourceStatus.values),
        empty_label="All live statuses",
        help_text="Only resources in this status. Deleted resources are listed only when asked for "
        "(here or in the filter).",
    )
    type = django_filters.ChoiceFilter(
        choices=value_choices(ResourceType.values), empty_label="All types", help_text="Only resources of this type."
    )
    region = django_filters.ChoiceFilter(
        choices=value_choices(REGIONS),
        empty_label="All regions",
        help_text="Only resources in this region code (see GET /v1/regions).",
    )
    filter = JsonFilterFilter(
        RESOURCE_FILTER,
        help_text="JSON-encoded search query, e.g. "
        '{"region":"us-east-1","status":{"$in":["active","pending"]},"created_at":{"$gte":"2025-01-01T00:00:00Z"}}. '
        f"Fields: {', '.join(RESOURCE_FILTER.allowed_fields)}; operators "
        "$eq $ne $in $nin $gt $gte $lt $lte $contains $startswith $exists, combined with $and $or $not.",
    )
    ordering = OrderingFilter(ORDERINGS, default=DEFAULT_ORDERING)

    class Meta:
        model = Resource
        fields = ["status", "type", "region", "filter", "ordering"]
