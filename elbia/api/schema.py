"""OpenAPI: every /v1 operation documents the bearer scheme, the contract's error responses with their exact
messages, and every header; postprocessing hooks close request bodies and link creates to what acts on them."""

import re

from drf_spectacular import openapi
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotAcceptable

from elbia.api import headers
from elbia.api.errors import STATUS_ERRORS, UNAVAILABLE, unavailable_message
from elbia.api.exceptions import IdempotencyConflict, IdempotencyKeyReused
from elbia.api.ids import DIGITS
from elbia.api.responses import INTERNAL_ERROR, INVALID_JSON, NOT_FOUND, RATE_LIMITED, UNAUTHORIZED
from elbia.api.serializers import UNKNOWN_FIELD

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

#: The request ID error examples show (the shape ``elbia.api.middleware`` gives).
EXAMPLE_REQUEST_ID = "req_4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99"


def error_example(status: int, code: str, message: str, details: dict | None = None) -> dict:
    """An error body as the API sends it (``elbia.api.responses.error_body``)."""
    error = {"status": status, "code": code, "message": message}
    if details:
        error["details"] = details
    error["request_id"] = EXAMPLE_REQUEST_ID
    return {"error": error}


#: The example each error status shows: the contract's code and exact message (API.md "Errors"; the seed's
#: table for 400, 401, 404 and 429), and details where the answer carries them. 403's names the route's scope.
ERROR_EXAMPLES: dict[str, tuple[str, str, dict | None]] = {
    "400": ("invalid_request", INVALID_JSON, {"instanceType": [UNKNOWN_FIELD]}),
    "401": ("unauthorized", UNAUTHORIZED, None),
    "404": ("not_found", NOT_FOUND, None),
    "406": ("not_acceptable", str(NotAcceptable.default_detail), None),
    "413": (*STATUS_ERRORS[413], None),
    "422": ("idempotency_key_reused", IdempotencyKeyReused.default_detail, None),
    "429": ("rate_limited", RATE_LIMITED, None),
    "500": ("internal_error", INTERNAL_ERROR, None),
    "503": (UNAVAILABLE, unavailable_message("database"), None),
}
IDEMPOTENCY_CONFLICT_EXAMPLE = ("idempotency_conflict", IdempotencyConflict.default_detail, None)
#: What an unknown query parameter gets (elbia.api.views.ApiView.initial); the example names ``limt``.
UNKNOWN_PARAMETER = "Unknown query parameter '{name}'; this endpoint accepts: {accepted}."

COMMON_ERRORS = {
    "401": "Invalid or missing API token",
    "403": "The token lacks the scope this endpoint requires (insufficient_scope)",
    "406": "The Accept header allows no JSON (not_acceptable)",
    "429": "Rate limit exceeded (with Retry-After)",
    "500": "Internal server error",
    "503": "A dependency (the database, the cache) did not answer in time; retry after Retry-After seconds",
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
    pattern=r"^[ -~]{1,255}$",  # elbia.api.idempotency refuses anything else with a 400
    description=(
        "Up to 255 printable ASCII characters, kept 24 hours per account. A retry with the same key and body "
        "replays the first response with `Idempotent-Replayed: true` and creates nothing."
    ),
)


INPUT_BODY_ERRORS = {"413": "Request body is too large (payload_too_large)"}


def declared_error(status: int, code: str, messages, description: str) -> OpenApiResponse:
    """A route's own error response: ``messages`` are the exact sentences it answers with (its examples)."""
    examples = [
        OpenApiExample(f"{code}_{number}", summary=message, value=error_example(status, code, message))
        for number, message in enumerate(messages, 1)
    ]
    return OpenApiResponse(response=ErrorSerializer, description=description, examples=examples)


def conflict(*messages: str) -> OpenApiResponse:
    """A route's 409: ``messages`` are the exact sentences its services raise (``Conflict``), with example IDs.

    Declared next to the view (``responses={409: conflict("Function FUNC_1234567890 is already deleted.")}``);
    tests/api/test_schema.py checks that every ``Conflict`` a service raises is shown on some route.
    """
    return declared_error(409, "conflict", messages, "The request conflicts with the object's current state")


def unavailable(*messages: str, code: str = UNAVAILABLE) -> OpenApiResponse:
    """A route's own 503 (a domain ``Unavailable``, with Retry-After): ``messages`` are its exact sentences."""
    return declared_error(503, code, messages, "Something the request needs is missing for now; retry later")


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


def id_parameter(prefix: str) -> OpenApiParameter:
    """The ``{id}`` of an object path: its public ID (a malformed one is a 404 like an unknown one)."""
    return OpenApiParameter(
        "id",
        OpenApiTypes.STR,
        location=OpenApiParameter.PATH,
        pattern=rf"^{prefix}[0-9]{{{DIGITS}}}$",
        description=f"The object's public ID, e.g. {prefix}1234567890.",
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
        if code == "200" and self.method == "GET" and self._is_list_view() and self._get_paginator() is not None:
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
        if code in ("429", "503"):
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

    def _map_basic_serializer(self, serializer, direction):
        """A serializer's object; fields it names in ``optional_fields`` (sent only on request, such as an
        expansion) are not required."""
        schema = super()._map_basic_serializer(serializer, direction)
        optional = set(getattr(serializer, "optional_fields", ()))
        if optional and "required" in schema:
            schema["required"] = [name for name in schema["required"] if name not in optional]
        return schema

    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        """A field's schema, narrowed by what its validators accept (a validator's ``json_schema``: an enum, a
        pattern, a range), so the document says what is accepted where the rule is declared."""
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        for validator in getattr(field, "validators", ()):
            schema.update(getattr(validator, "json_schema", {}))
        return schema

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        prefix = getattr(getattr(self.view, "serializer_class", None), "Meta", None)
        prefix = getattr(getattr(prefix, "model", None), "PUBLIC_ID_PREFIX", "")
        if prefix and "{id}" in self.path:
            parameters = [*parameters, id_parameter(prefix)]
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
            elif status in IDEMPOTENCY_ERRORS or status in COMMON_ERRORS:  # the route's own, and the common one
                responses[status]["description"] += f"; or: {description}"
            # The route's own examples first (a declared 409 or 503), then the ones every route shares.
            content = responses[status]["content"]["application/json"]
            examples = content.setdefault("examples", {})
            for name, value in self.error_examples(status):
                examples.setdefault(name, {"value": value, "summary": value["error"]["message"]})
        for status, response in responses.items():  # an error the route declares without its own examples
            content = response.get("content", {}).get("application/json")
            if status[0] in "45" and status not in errors and content is not None and not content.get("examples"):
                content["examples"] = {
                    name: {"value": value, "summary": value["error"]["message"]}
                    for name, value in self.error_examples(status)
                }
        return responses

    def error_examples(self, status: str) -> list[tuple[str, dict]]:
        """The examples every route gives for ``status``: the contract's exact code and message."""
        number = int(status)
        if status == "403":
            scope = getattr(self.view, "read_scope" if self.method in ("GET", "HEAD") else "write_scope", "")
            if not scope:
                return []
            message = f"This request requires the '{scope}' scope."
            return [
                ("insufficient_scope", error_example(403, "insufficient_scope", message, {"required_scope": scope}))
            ]
        if status == "409":
            return [("idempotency_conflict", error_example(409, *IDEMPOTENCY_CONFLICT_EXAMPLE))]
        if status == "400" and self.method == "GET":
            allowed = getattr(self.view, "allowed_query_parameters", tuple)()
            accepted = ", ".join(sorted(allowed)) or "none"
            message = UNKNOWN_PARAMETER.format(name="limt", accepted=accepted)
            return [("invalid_parameter", error_example(400, "invalid_parameter", message))]
        if status in ERROR_EXAMPLES:
            code, message, details = ERROR_EXAMPLES[status]
            return [(code, error_example(number, code, message, details))]
        return []


# --- Postprocessing hooks (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) -----------------------------------

METHODS = ("get", "put", "patch", "delete", "post")
#: A path that acts on one object of a collection: the collection's path, then ``/{parameter}``, then maybe more.
_MEMBER_PATH = r"{collection}/\{{(?P<parameter>\w+)\}}(?:/[^{{}}]*)?"


def close_request_bodies(result, generator, request, public):
    """Request bodies are closed (``additionalProperties: false``): every /v1 input refuses an unknown field
    with a 400 naming it, so generated clients and fuzzers know only the declared fields are accepted."""
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and schema.get("type") == "object":
            schema.setdefault("additionalProperties", False)
    return result


def link_creates(result, generator, request, public):
    """OpenAPI links from every create (a ``POST`` answering ``201``) to each operation on the created object.

    ``POST /v1/functions`` links to ``GET``, ``PATCH`` and ``DELETE /v1/functions/{id}`` (and to any
    ``/v1/functions/{id}/...`` route), taking ``id`` from the 201 body: clients and the stateful fuzzer
    follow them. A new collection with a create gets its links without a declaration.
    """
    paths = result.get("paths", {})
    for collection, item in paths.items():
        created = item.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        member = re.compile(_MEMBER_PATH.format(collection=re.escape(collection)))
        links = {}
        for path, target in paths.items():
            match = member.fullmatch(path)
            if match is None:
                continue
            for method in METHODS:
                operation = target.get(method)
                if operation is None:
                    continue
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {f"path.{match['parameter']}": "$response.body#/id"},
                    "description": f"{method.upper()} {path} on the object just created",
                }
        if links:
            created["links"] = links
    return result
