"""Validation shared by the model, the services and the API serializers (Django ValidationErrors)."""

import ipaddress
import re

from django.core.exceptions import ValidationError

from elbia.api.ids import is_public_id

MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
TAG_KEY = re.compile(r"^[A-Za-z0-9 _.:/=+@-]+$")
VPC_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$")
DEFAULT_VPC_NAME = "default"


def _printable(value: str) -> bool:
    return value.isprintable()


def validate_tags(value) -> None:
    """Tags are a JSON object of at most 50 string keys (1-128 chars) to string values (0-256 chars)."""
    if not isinstance(value, dict):
        raise ValidationError("Tags must be a JSON object of string keys to string values.", code="invalid")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags are allowed.", code="max_length")
    for key, tag_value in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY or not TAG_KEY.match(key):
            raise ValidationError(
                f"Tag key {str(key)[:40]!r} is invalid: use 1-{MAX_TAG_KEY} characters among letters, digits, "
                "spaces and _ . : / = + @ -.",
                code="invalid",
            )
        if not isinstance(tag_value, str):
            raise ValidationError(f"The value of tag {key!r} must be a string.", code="invalid")
        if len(tag_value) > MAX_TAG_VALUE or not _printable(tag_value):
            raise ValidationError(
                f"The value of tag {key!r} must be at most {MAX_TAG_VALUE} printable characters.", code="invalid"
            )


def validate_resource_name(value: str) -> None:
    """A compute or function resource name: printable text (no control characters)."""
    if not _printable(value):
        raise ValidationError("Names may not contain control characters.", code="invalid")


def validate_vpc_name(value: str) -> None:
    """A VPC name: 1-64 letters, digits, '.', '_' or '-', starting and ending with a letter or digit, not an ID."""
    if not VPC_NAME.match(value) or is_public_id(value, "RES_"):
        raise ValidationError(
            "VPC names are 1-64 letters, digits, '.', '_' or '-', start and end with a letter or digit, "
            "and do not look like a resource ID.",
            code="invalid",
        )


def validate_cidr_block(value: str) -> None:
    """An IPv4 network in CIDR notation with a prefix from /16 to /28, as AWS accepts for a VPC."""
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValidationError(f"{value[:40]!r} is not an IPv4 network in CIDR notation (e.g. 10.0.0.0/16).") from None
    if network.version != 4 or not 16 <= network.prefixlen <= 28:
        raise ValidationError("A VPC's CIDR block must be an IPv4 network from /16 to /28.")
