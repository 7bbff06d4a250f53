"""Validation shared by the model, the services and the API serializers (Django ValidationErrors)."""

import ipaddress
import re

from django.core.exceptions import ValidationError

from elbia.api.ids import is_public_id
from elbia.api.json_filter import TAG_KEY_PATTERN
from resources.catalog import INSTANCE_TYPES, REGIONS

MAX_TAGS = 50
MAX_TAG_VALUE = 256
VPC_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")
DEFAULT_VPC_NAME = "default"
#: The memory a function's compute may have, in MB (AWS Lambda's range); the functions app validates with it.
FUNCTION_MEMORY_MB = (128, 10240)


def validate_region(value: str) -> None:
    """A region code from the catalog (real AWS codes such as ``us-east-1``)."""
    if value not in REGIONS:
        raise ValidationError(f"'{value[:64]}' is not a valid region.", code="invalid_choice")


def validate_instance_type(value: str) -> None:
    """An instance type from the catalog (``t2.micro``, ``m5.large``, ...)."""
    if value not in INSTANCE_TYPES:
        raise ValidationError(f"'{value[:64]}' is not a valid instance type.", code="invalid_choice")


def validate_function_memory_mb(value: int) -> None:
    """Memory of a function's compute in MB, 128 to 10240 (AWS Lambda's range)."""
    low, high = FUNCTION_MEMORY_MB
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"Ensure this value is an integer from {low} to {high} (MB).", code="out_of_range")


def _printable(value: str) -> bool:
    return value.isprintable()


def validate_tags(value) -> None:
    """Tags: a JSON object of at most 50 keys to string values of at most 256 printable characters.

    Keys follow the JSON filter's rule (a letter, then up to 63 letters, digits or ``_ . : / -``), so
    every tag can be filtered on as ``tags.<key>``.
    """
    if not isinstance(value, dict):
        raise ValidationError("Tags must be a JSON object of string keys to string values.", code="invalid_tags")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags are allowed.", code="max_length")
    for key, tag_value in value.items():
        if not isinstance(key, str) or not TAG_KEY_PATTERN.fullmatch(key):
            raise ValidationError(
                f"Tag key {str(key)[:40]!r} is invalid: start with a letter, then up to 63 letters, digits "
                "or _ . : / -.",
                code="invalid_tags",
            )
        if not isinstance(tag_value, str):
            raise ValidationError(f"The value of tag {key!r} must be a string.", code="invalid_tags")
        if len(tag_value) > MAX_TAG_VALUE or not _printable(tag_value):
            raise ValidationError(
                f"The value of tag {key!r} must be at most {MAX_TAG_VALUE} printable characters.", code="invalid_tags"
            )


# What the OpenAPI document says each validator accepts (elbia.api.schema reads ``json_schema``).
validate_region.json_schema = {"enum": list(REGIONS)}
validate_instance_type.json_schema = {"enum": list(INSTANCE_TYPES)}
validate_tags.json_schema = {
    "type": "object",
    "maxProperties": MAX_TAGS,
    "additionalProperties": {"type": "string", "maxLength": MAX_TAG_VALUE},
    "description": "Up to 50 tags: keys a letter then up to 63 letters, digits or _ . : / -; values up to 256 "
    "printable characters.",
}


def validate_resource_name(value: str) -> None:
    """A compute or function resource name: printable text (no control characters)."""
    if not _printable(value):
        raise ValidationError("Names may not contain control characters.", code="invalid_name")


def validate_vpc_name(value: str) -> None:
    """A VPC name: 1-64 letters, digits, '.', '_' or '-', starting and ending with a letter or digit, not an ID."""
    if not VPC_NAME.match(value) or is_public_id(value, "RES_"):
        raise ValidationError(
            "VPC names are 1-64 letters, digits, '.', '_' or '-', start and end with a letter or digit, "
            "and do not look like a resource ID.",
            code="invalid_name",
        )


def validate_cidr_block(value: str) -> None:
    """An IPv4 network in CIDR notation with a prefix from /16 to /28, as AWS accepts for a VPC."""
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValidationError(f"{value[:40]!r} is not an IPv4 network in CIDR notation (e.g. 10.0.0.0/16).") from None
    if network.version != 4 or not 16 <= network.prefixlen <= 28:
        raise ValidationError("A VPC's CIDR block must be an IPv4 network from /16 to /28.")


#: What ``vpc`` takes when creating a compute resource: "default" (always works), a VPC's ID or its name.
VPC_REFERENCE_SCHEMA = {
    "anyOf": [
        {"type": "string", "enum": [DEFAULT_VPC_NAME]},
        {"type": "string", "pattern": r"^RES_[0-9]{10}$"},
        {"type": "string", "pattern": VPC_NAME.pattern},
    ]
}
validate_vpc_name.json_schema = {"pattern": VPC_NAME.pattern, "maxLength": 64}
validate_cidr_block.json_schema = {"pattern": r"^[0-9]{1,3}(?:\.[0-9]{1,3}){3}/(?:1[6-9]|2[0-8])$"}
validate_function_memory_mb.json_schema = {"minimum": FUNCTION_MEMORY_MB[0], "maximum": FUNCTION_MEMORY_MB[1]}
