"""One error shape for everything under /v1 and /oauth/, from every layer (DRF, Django, auth, throttling).

{"error": {"status": 400, "code": "invalid_request", "message": "Invalid JSON in request body",
           "details": {...}, "request_id": "req_..."}}

DRF's views answer through ``exception_handler``; Django's error handlers (``bad_request``, ``page_not_found``,
``server_error``) and ``ApiErrorMiddleware`` cover what happens outside them (a disallowed Host, a method
a plain view refuses, an error in a middleware). OAuth's own errors (``{"error": "invalid_grant"}``) keep
their RFC 6749 shape. A dependency that does not answer in time (the database, Redis, the broker) is a
``503 unavailable`` with ``Retry-After``, on the API and the dashboard alike (``dependency_of``).
"""

import logging
import sys

import redis.exceptions
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt
from django_redis.exceptions import ConnectionInterrupted
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from elbia import errors as domain
from elbia.api.exceptions import InsufficientScope
from elbia.api.headers import ALLOW, RETRY_AFTER, WWW_AUTHENTICATE
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
UNAVAILABLE = "unavailable"
#: What a 503 asks the client to wait (seconds): about the time a dependency needs to come back or fail over.
RETRY_AFTER_SECONDS = 5
#: Code and message of an error answer that no layer of ours wrote (Django's own 405, 413, ...), by status.
STATUS_ERRORS = {
    400: ("invalid_request", "The request could not be understood."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", NOT_FOUND),
    405: ("method_not_allowed", "This method is not allowed on this path."),
    413: ("payload_too_large", "Request body is too large."),
    429: ("rate_limited", RATE_LIMITED),
    503: (UNAVAILABLE, "The service is temporarily unavailable; retry shortly."),
}
#: Response headers an error keeps when it is rewritten as JSON.
KEPT_HEADERS = (ALLOW, RETRY_AFTER, WWW_AUTHENTICATE)


def dependency_of(exc: BaseException | None) -> str | None:
    """The dependency whose failure to answer (in time) raised ``exc``: database, cache or broker; else None."""
    if isinstance(exc, OperationalError | InterfaceError):
        return "database"
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError | ConnectionInterrupted):
        return "cache"
    if isinstance(exc, BrokerError):
        return "broker"
    return None


def unavailable_message(dependency: str) -> str:
    return f"The service is temporarily unavailable (its {dependency} did not answer in time); retry shortly."


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
    if isinstance(exc, domain.LimitReached):
        return 429, "rate_limited", RATE_LIMITED, None, {RETRY_AFTER: str(exc.retry_after)}
    if isinstance(exc, domain.DomainError):
        status, headers = DOMAIN_STATUSES[next(kind for kind in DOMAIN_STATUSES if isinstance(exc, kind))]
        return status, exc.code, str(exc), None, headers
    if isinstance(exc, DjangoPermissionDenied):
        return 403, "permission_denied", "You do not have permission to perform this action.", None, {}
    if isinstance(exc, exceptions.Throttled):
        headers = {RETRY_AFTER: str(int(exc.wait) if exc.wait is not None else 1)}
        return 429, "rate_limited", RATE_LIMITED, None, headers
    dependency = dependency_of(exc)
    if dependency is not None:
        logger.warning("The %s did not answer while serving the API: %s", dependency, exc)
        return 503, UNAVAILABLE, unavailable_message(dependency), None, {RETRY_AFTER: str(RETRY_AFTER_SECONDS)}
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


@csrf_exempt
def not_found_view(request, *args, exception=None, **kwargs) -> JsonResponse:
    """Any path under /v1 that matches no endpoint (a write to one is a 404 too, not a CSRF refusal)."""
    return json_error(404, "not_found", NOT_FOUND)


def is_api_path(path: str) -> bool:
    """Paths whose every answer is JSON: the /v1 API and the OAuth endpoints."""
    return path == "/v1" or path.startswith(("/v1/", "/oauth/"))


def unavailable_response(request, dependency: str):
    """503 with Retry-After: the contract's JSON on the API, a plain page elsewhere (rendered without the database)."""
    headers = {RETRY_AFTER: str(RETRY_AFTER_SECONDS)}
    if is_api_path(request.path):
        return json_error(503, UNAVAILABLE, unavailable_message(dependency), headers)
    response = HttpResponse(render_to_string("503.html"), status=503)
    response[RETRY_AFTER] = headers[RETRY_AFTER]
    return response


def page_not_found(request, exception):
    """handler404: JSON under /v1 and /oauth/, Django's page elsewhere."""
    if is_api_path(request.path):
        return not_found_view(request)
    from django.views.defaults import page_not_found as html_page_not_found

    return html_page_not_found(request, exception)


def bad_request(request, exception):
    """handler400: JSON under /v1 and /oauth/ (a disallowed Host says so), Django's page elsewhere."""
    if is_api_path(request.path):
        if isinstance(exception, DisallowedHost):
            return json_error(
                400, "invalid_request", "The Host header names a host or port this service does not serve."
            )
        return json_error(400, "invalid_request", STATUS_ERRORS[400][1])
    from django.views.defaults import bad_request as html_bad_request

    return html_bad_request(request, exception)


def server_error(request):
    """handler500: a dependency that did not answer is a 503; JSON under /v1 and /oauth/; never a stack trace."""
    dependency = dependency_of(sys.exc_info()[1])
    if dependency is not None:
        return unavailable_response(request, dependency)
    if is_api_path(request.path):
        return json_error(500, "internal_error", INTERNAL_ERROR)
    from django.views.defaults import server_error as html_server_error

    return html_server_error(request)


class ApiErrorMiddleware:
    """Under /v1 and /oauth/, any error answer that is not JSON (Django's 405, a middleware's page) becomes the
    contract's error; anywhere, a view's dependency failure is a 503 instead of a 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api_path(request.path)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            code, message = STATUS_ERRORS.get(response.status_code, ("internal_error", INTERNAL_ERROR))
            kept = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
            response = json_error(response.status_code, code, message, kept)
        return response

    def process_exception(self, request, exception):
        dependency = dependency_of(exception)
        if dependency is None:
            return None
        logger.warning("The %s did not answer while serving %s: %s", dependency, request.path, exception)
        return unavailable_response(request, dependency)
