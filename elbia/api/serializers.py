"""Serializer pieces every /v1 app shares."""

import re
from datetime import UTC, datetime

from rest_framework import serializers

UNKNOWN_FIELD = "Unknown field."
# An RFC 3339 date-time with a time zone (Z or a numeric offset), as the API takes times.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII)
MAX_FIELD_LABEL = 64


def field_label(name: str) -> str:
    """A client-sent key as an error may name it: at most 64 characters, lone surrogates escaped.

    JSON lets a key hold ``\\ud800``, which no UTF-8 response can carry as is.
    """
    return name[:MAX_FIELD_LABEL].encode("utf-8", "backslashreplace").decode("utf-8")


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare (a typo such as ``instanceType`` is a 400, not silently ignored)."""

    #: Fields that exist on the object but may not be sent here, with the message to give.
    refused_fields: dict[str, str] = {}

    def validate(self, attrs):
        initial = self.initial_data if isinstance(self.initial_data, dict) else {}
        errors = {}
        for name in initial:
            if name not in self.fields:
                errors[field_label(name)] = [self.refused_fields.get(name, UNKNOWN_FIELD)]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings, as sent (no whitespace trimmed).

    DRF's own turns numbers into text (``{"name": 1e300}`` became the name ``"1e+300"``), which the schema,
    saying ``string``, does not allow.
    """

    default_error_messages = {"invalid": "Not a valid string."}

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time with a time zone as an aware UTC datetime; ``ValueError`` for anything else."""
    if not RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 date-time with a time zone")
    try:
        return datetime.fromisoformat(text.upper()).astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None


def rfc3339(value: datetime | None) -> str | None:
    """RFC 3339 UTC with a ``Z``, as REST_FRAMEWORK["DATETIME_FORMAT"] renders every other time."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None
