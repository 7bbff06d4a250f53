"""OpenAPI: every /v1 operation documents the bearer scheme and the contract's error responses."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiResponse, inline_serializer
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


class AutoSchema(openapi.AutoSchema):
    """Adds the error responses every /v1 operation can give, in the contract's shape."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = dict(COMMON_ERRORS)
        if self.method != "DELETE":
            errors.update(INPUT_ERRORS)
        if "{" in self.path:
            errors.update(LOOKUP_ERRORS)
        for status, description in errors.items():
            if status not in responses:
                responses[status] = self._get_response_for_code(
                    OpenApiResponse(response=ErrorSerializer, description=description), status
                )
        return responses
