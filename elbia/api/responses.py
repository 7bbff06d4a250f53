"""The contract's error document and plain-Django error responses, for every layer under /v1.

{"error": {"status": 400, "code": "invalid_request", "message": "Invalid JSON in request body",
           "details": {...}, "request_id": "req_..."}}

Plain Django only (no DRF import), so the layers below DRF (throttling, middleware) can answer in the
contract's shape; ``elbia.api.errors`` maps exceptions onto it.
"""

from django.http import JsonResponse

from elbia.api.middleware import current_request_id

INVALID_JSON = "Invalid JSON in request body"
UNAUTHORIZED = "Invalid or missing API token"
NOT_FOUND = "Resource not available"
RATE_LIMITED = "Rate limit exceeded"
INTERNAL_ERROR = "Internal server error"
BEARER_CHALLENGE = 'Bearer realm="elbia"'


def error_body(status: int, code: str, message: str, details=None) -> dict:
    """The contract's error document."""
    error = {"status": status, "code": code, "message": message}
    if details:
        error["details"] = details
    error["request_id"] = current_request_id.get()
    return {"error": error}


def json_error(status: int, code: str, message: str, headers: dict | None = None) -> JsonResponse:
    """A plain-Django error response in the contract's shape (outside DRF's views)."""
    response = JsonResponse(
        error_body(status, code, message),
        status=status,
        content_type="application/json; charset=utf-8",
        json_dumps_params={"separators": (",", ":")},
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response
