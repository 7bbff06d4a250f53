"""Serializer pieces every /v1 app shares."""

from datetime import UTC, datetime

from rest_framework import serializers

UNKNOWN_FIELD = "Unknown field."


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare (a typo such as ``instanceType`` is a 400, not silently ignored)."""

    #: Fields that exist on the object but may not be sent here, with the message to give.
    refused_fields: dict[str, str] = {}

    def validate(self, attrs):
        initial = self.initial_data if isinstance(self.initial_data, dict) else {}
        errors = {}
        for name in initial:
            if name not in self.fields:
                errors[name] = [self.refused_fields.get(name, UNKNOWN_FIELD)]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


def rfc3339(value: datetime | None) -> str | None:
    """RFC 3339 UTC with a ``Z``, as REST_FRAMEWORK["DATETIME_FORMAT"] renders every other time."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None
