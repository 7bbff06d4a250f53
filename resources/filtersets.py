"""The query parameters of ``GET /v1/resources``: plain ``type``/``region``/``status``, ``filter`` and ``ordering``.

Every value is checked against a whitelist before it reaches the selector; a
bad one is a ``400 invalid_parameter`` naming the parameter.
"""

import json
from typing import Any

from elbia.api.json_filter import FilterField, JsonFilter
from elbia.api.views import parse_choice
from resources.catalog import REGIONS
from resources.models import ResourceStatus, ResourceType
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

COMBINATORS = ("$and", "$or")


def _mentions(document: Any, field: str) -> bool:
    """Whether a (valid) filter document has a condition on ``field`` anywhere."""
    if not isinstance(document, dict):
        return False
    for key, value in document.items():
        if key == field:
            return True
        if key in COMBINATORS and any(_mentions(item, field) for item in value):
            return True
        if key == "$not" and _mentions(value, field):
            return True
    return False


def resource_list_params(params) -> dict[str, Any]:
    """The keyword arguments of ``resources.selectors.resource_list`` for these query parameters."""
    arguments: dict[str, Any] = {
        "type": parse_choice(params, "type", tuple(ResourceType.values)),
        "region": parse_choice(params, "region", tuple(REGIONS)),
        "status": parse_choice(params, "status", tuple(ResourceStatus.values)),
        "ordering": parse_choice(params, "ordering", tuple(ORDERINGS), default=DEFAULT_ORDERING),
    }
    text = params.get("filter")
    if text is not None:
        arguments["condition"] = RESOURCE_FILTER.compile(text)
        # The filter is valid JSON once compiled; deleted resources show when it speaks about status.
        arguments["include_deleted"] = _mentions(json.loads(text), "status")
    return arguments


LIST_PARAMETERS = [
    (
        "filter",
        "JSON-encoded search query, e.g. "
        '{"region":"us-east-1","status":{"$in":["active","pending"]},"created_at":{"$gte":"2025-01-01T00:00:00Z"}}. '
        "Fields: id, type, region, status, instance_type, vpc, name, created_at, tags.<key>; operators "
        "$eq $ne $in $nin $gt $gte $lt $lte $contains $startswith $exists, combined with $and $or $not.",
    ),
    ("type", "Only resources of this type: " + ", ".join(ResourceType.values) + "."),
    ("region", "Only resources in this region code (see GET /v1/regions)."),
    (
        "status",
        "Only resources in this status: "
        + ", ".join(ResourceStatus.values)
        + ". Deleted resources are listed only when asked for (here or in the filter).",
    ),
    ("ordering", "created_at or -created_at (default); ties are broken by id."),
]
