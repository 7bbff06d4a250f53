"""OpenAPI: every /v1 operation documents the bearer scheme and the contract's error responses."""

from drf_spectacular import openapi
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers

from elbia.api import headers

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
    headers.IDEMPOTENCY_KEY,
    OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "Up to 255 printable ASCII characters, kept 24 hours per account. A retry with the same key and body "
        "replays the first response with `Idempotent-Replayed: true` and creates nothing."
    ),
)


INPUT_BODY_ERRORS = {"413": "Request body is too large (payload_too_large)"}


def conflict(when: str) -> OpenApiResponse:
    """A 409 response for the schema: ``when`` says which states conflict."""
    return OpenApiResponse(response=ErrorSerializer, description=f"conflict: {when}")


def expand_parameter(expansions) -> OpenApiParameter:
    """``expand`` for a view's expansions (blanks around names and empty items are ignored)."""
    names = "|".join(sorted(expansions))
    return OpenApiParameter(
        "expand",
        str,
        pattern=rf"^[\s,]*(?:{names})(?:\s*,[\s,]*(?:{names}))*[\s,]*$",
        description="Comma-separated: "
        + "; ".join(
            f"`{name}` {expansion.description} (needs the `{expansion.scope}` scope)"
            for name, expansion in sorted(expansions.items())
        )
        + ".",
    )


def _header(description: str, schema: dict, required: bool = True) -> dict:
    return {"schema": schema, "description": description, "required": required}


REQUEST_ID_HEADER = _header(
    "The request's ID (the client's X-Request-ID when sane), also in error bodies.", {"type": "string"}
)
RATE_LIMIT_HEADERS = {
    headers.RATE_LIMIT_LIMIT: "Requests allowed in the current window",
    headers.RATE_LIMIT_REMAINING: "Requests left in the current window",
    headers.RATE_LIMIT_RESET: "When the window ends (epoch seconds)",
}


PAGINATION_HEADERS = {
    headers.LINK: _header(
        'RFC 8288 links: rel="first", "prev" and "next" as they apply (`next` and a cursor page\'s `prev` carry '
        'an opaque `cursor`), rel="last" with `Prefer: count=exact`',
        {"type": "string"},
    ),
    headers.TOTAL_COUNT: _header(
        "Number of results across all pages: with `Prefer: count=exact` (or `count=estimated` where the database "
        "has no estimate)",
        {"type": "integer", "minimum": 0},
        required=False,
    ),
    headers.TOTAL_COUNT_ESTIMATE: _header(
        "The database planner's estimate of the number of results: with `Prefer: count=estimated`",
        {"type": "integer", "minimum": 0},
        required=False,
    ),
    headers.PREFERENCE_APPLIED: _header(
        "The `Prefer` preference honoured (RFC 7240): `count=exact` or `count=estimated`",
        {"type": "string", "enum": ["count=exact", "count=estimated"]},
        required=False,
    ),
}


class AutoSchema(openapi.AutoSchema):
    """Adds the error responses every /v1 operation can give, in the contract's shape, and every header."""

    def _get_response_headers_for_code(self, status_code, direction="response"):
        """The headers the /v1 plumbing adds (request ID, rate limits, pagination, Location, challenges)."""
        documented = super()._get_response_headers_for_code(status_code, direction)
        code = str(status_code)
        documented.setdefault(headers.REQUEST_ID, REQUEST_ID_HEADER)
        # Every request is charged to a budget before its view can fail, except one that crashed before that.
        for name, description in RATE_LIMIT_HEADERS.items():
            documented.setdefault(name, _header(description, {"type": "integer", "minimum": 0}, code != "500"))
        if code == "200" and self.method == "GET" and self._get_paginator() is not None:
            documented.update(PAGINATION_HEADERS)
        if code == "201":
            documented[headers.LOCATION] = _header(
                "The absolute URL of the new object", {"type": "string", "format": "uri"}
            )
        if code.startswith("2") and self.is_idempotent():
            documented[headers.IDEMPOTENT_REPLAYED] = _header(
                "`true` when the response replays an earlier request with the same Idempotency-Key",
                {"type": "string", "enum": ["true"]},
                required=False,
            )
        if code == "401":
            documented[headers.WWW_AUTHENTICATE] = _header(
                'RFC 6750 challenge: `Bearer realm="elbia"...`', {"type": "string"}
            )
        if code == "403":
            documented[headers.WWW_AUTHENTICATE] = _header(
                'With insufficient_scope: `Bearer realm="elbia", error="insufficient_scope", scope="..."`',
                {"type": "string"},
                required=False,
            )
        if code == "429":
            documented[headers.RETRY_AFTER] = _header(
                "Seconds to wait before retrying", {"type": "integer", "minimum": 0}
            )
        return documented

    def is_idempotent(self) -> bool:
        """Whether the operation's handler honours Idempotency-Key (elbia.api.idempotency)."""
        handler = getattr(self.view, getattr(self.view, "action", None) or self.method.lower(), None)
        return getattr(handler, "idempotent", False)

    def _get_filter_parameters(self):
        """The FilterSet's parameters, their descriptions without the empty choice list django-filter's
        extension appends (enums are in the schema)."""
        parameters = super()._get_filter_parameters()
        for parameter in parameters:
            if "description" in parameter:
                parameter["description"] = parameter["description"].strip()
        return parameters

    def get_request_serializer(self):
        """A viewset's input shapes: ``create_serializer_class`` and ``update_serializer_class``."""
        action = getattr(self.view, "action", None)
        declared = {"create": "create_serializer_class", "partial_update": "update_serializer_class"}.get(action)
        serializer = getattr(self.view, declared, None) if declared else None
        return serializer() if serializer is not None else super().get_request_serializer()

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if self.is_idempotent():
            parameters = [*parameters, IDEMPOTENCY_KEY]
        expansions = getattr(self.view, "expansions", None)
        if expansions and getattr(self.view, "action", None) in ("list", "retrieve"):
            parameters = [*parameters, expand_parameter(expansions)]
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = dict(COMMON_ERRORS)
        if self.method != "DELETE":
            errors.update(INPUT_ERRORS)
        if self.method in ("POST", "PUT", "PATCH"):
            errors.update(INPUT_BODY_ERRORS)
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
