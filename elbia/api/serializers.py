"""Serializer pieces every /v1 app shares."""

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
