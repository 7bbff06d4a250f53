"""OpenAPI: every /v1 operation documents the bearer scheme and the contract's error responses."""

from drf_spectacular import openapi
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorSerializer = inline_serializer(
    name="Error",
    fields={
        "error": inline_serializer(
            name="ErrorDetail",
            fields={
                "status": serializers.IntegerField(),
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "details": serializers.DictField(required=False),
                "request_id": serializers.CharField(),
            },
        )
    },
)

COMMON_ERRORS = {
    "401": "Invalid or missing API token",
    "403": "The token lacks the scope this endpoint requires (insufficient_scope)",
    "429": "Rate limit exceeded",
    "500": "Internal server error",
}
INPUT_ERRORS = {"400": "Invalid JSON in request body, or an invalid parameter"}
LOOKUP_ERRORS = {"404": "Resource not available"}
IDEMPOTENCY_ERRORS = {
    "409": "A request with this Idempotency-Key is still being processed (idempotency_conflict)",
    "422": "This Idempotency-Key was already used with a different request (idempotency_key_reused)",
}
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Up to 255 printable ASCII characters, kept 24 hours per account. A retry with the same key and body "
        "replays the first response with `Idempotent-Replayed: true` and creates nothing."
    ),
)


class AutoSchema(openapi.AutoSchema):
    """Adds the error responses every /v1 operation can give, in the contract's shape."""

    def is_idempotent(self) -> bool:
        """Whether the operation's handler honours Idempotency-Key (elbia.api.idempotency)."""
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        return getattr(handler, "idempotent", False)

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        return [*parameters, IDEMPOTENCY_KEY] if self.is_idempotent() else parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = dict(COMMON_ERRORS)
        if self.method != "DELETE":
            errors.update(INPUT_ERRORS)
        if "{" in self.path:
            errors.update(LOOKUP_ERRORS)
        if self.is_idempotent():
            errors.update(IDEMPOTENCY_ERRORS)
        for status, description in errors.items():
            if status not in responses:
                responses[status] = self._get_response_for_code(
                    OpenApiResponse(response=ErrorSerializer, description=description), status
                )
        return responses
