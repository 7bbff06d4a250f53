"""One error shape for everything under /v1, from every layer (DRF, Django, auth, throttling).

{"error": {"status": 400, "code": "invalid_request", "message": "Invalid JSON in request body",
           "details": {...}, "request_id": "req_..."}}
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from elbia import errors as domain
from elbia.api.exceptions import InsufficientScope
from elbia.api.headers import RETRY_AFTER, WWW_AUTHENTICATE
from elbia.api.responses import (
    BEARER_CHALLENGE,
    INTERNAL_ERROR,
    INVALID_JSON,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHORIZED,
    error_body,
    json_error,
)

logger = logging.getLogger("elbia.api")

# How the API answers each domain error (elbia.errors); NotFound is the contract's 404 (see _describe).
DOMAIN_STATUSES: dict[type[domain.DomainError], tuple[int, dict[str, str]]] = {
    domain.Conflict: (409, {}),
    domain.NotAllowed: (403, {}),
    domain.Unavailable: (503, {RETRY_AFTER: "60"}),
    domain.DomainError: (400, {}),
}


def _describe(exc: Exception) -> tuple[int, str, str, object, dict]:
    """Status, code, message, details and headers for any exception raised while serving /v1."""
    if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType):
        return 400, "invalid_request", INVALID_JSON, {"body": [str(exc.detail)]}, {}
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return 400, "invalid_request", INVALID_JSON, details, {}
    if isinstance(exc, DjangoValidationError):  # raised by a service's full_clean or its own checks
        details = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return 400, "invalid_request", INVALID_JSON, details, {}
    if isinstance(exc, RequestDataTooBig):
        return 413, "payload_too_large", "Request body is too large.", None, {}
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        challenge = BEARER_CHALLENGE
        if isinstance(exc, exceptions.AuthenticationFailed):
            challenge += ', error="invalid_token"'
        return 401, "unauthorized", UNAUTHORIZED, None, {WWW_AUTHENTICATE: challenge}
    if isinstance(exc, InsufficientScope):
        challenge = f'{BEARER_CHALLENGE}, error="insufficient_scope", scope="{exc.scope}"'
        return (
            403,
            "insufficient_scope",
            str(exc.detail),
            {"required_scope": exc.scope},
            {WWW_AUTHENTICATE: challenge},
        )
    if isinstance(exc, Http404 | exceptions.NotFound | domain.NotFound):
        return 404, "not_found", NOT_FOUND, None, {}
    if isinstance(exc, domain.DomainError):
        status, headers = DOMAIN_STATUSES[next(kind for kind in DOMAIN_STATUSES if isinstance(exc, kind))]
        return status, exc.code, str(exc), None, headers
    if isinstance(exc, DjangoPermissionDenied):
        return 403, "permission_denied", "You do not have permission to perform this action.", None, {}
    if isinstance(exc, exceptions.Throttled):
        headers = {RETRY_AFTER: str(int(exc.wait) if exc.wait is not None else 1)}
        return 429, "rate_limited", RATE_LIMITED, None, headers
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        if isinstance(detail, dict | list):
            return exc.status_code, exc.default_code, str(exc.default_detail), detail, {}
        return exc.status_code, getattr(detail, "code", None) or exc.default_code, str(detail), None, {}
    logger.error("Unhandled error while serving the API", exc_info=exc)
    return 500, "internal_error", INTERNAL_ERROR, None, {}


def exception_handler(exc: Exception, context) -> Response:
    """DRF's EXCEPTION_HANDLER: every exception becomes the contract's error response."""
    status, code, message, details, headers = _describe(exc)
    response = Response(error_body(status, code, message, details), status=status, headers=headers)
    set_rollback()  # a request that failed half-way leaves nothing half-written
    return response


def not_found_view(request, *args, exception=None, **kwargs) -> JsonResponse:
    """Any path under /v1 that matches no endpoint."""
    return json_error(404, "not_found", NOT_FOUND)


def _is_api_path(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def page_not_found(request, exception):
    """handler404: JSON under /v1, Django's page elsewhere."""
    if _is_api_path(request.path):
        return not_found_view(request)
    from django.views.defaults import page_not_found as html_page_not_found

    return html_page_not_found(request, exception)


def server_error(request):
    """handler500: JSON under /v1, Django's page elsewhere; never a stack trace."""
    if _is_api_path(request.path):
        return json_error(500, "internal_error", INTERNAL_ERROR)
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request)
