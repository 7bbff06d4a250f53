"""Serializer fields shared by the /v1 serializers."""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings.

    DRF's own turns numbers into text (``{"name": 1e300}`` became the name ``"1e+300"``), which the schema,
    saying ``string``, does not allow.
    """

    default_error_messages = {"invalid": "Not a valid string."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
