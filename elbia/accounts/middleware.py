"""Content-Security-Policy for the dashboard's HTML pages, and its own error pages also under DEBUG."""

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404
from django.http.multipartparser import MultiPartParserError
from django.urls import get_resolver
from django.utils.log import log_response


class ContentSecurityPolicyMiddleware:
    """Send ``settings.CONTENT_SECURITY_POLICY`` with every HTML page but the exempt ones.

    The dashboard serves every script and stylesheet from /static/ and has no inline
    script or style, so the policy allows 'self' only. The admin and the Swagger UI
    at /docs/ are third-party pages with inline code: they are exempt by path
    (``CONTENT_SECURITY_POLICY_EXEMPT_PATHS``), and so are Django's debug error pages (an error answer
    under DEBUG that the dashboard did not render itself).
    New dashboard pages are covered without doing anything.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            "Content-Security-Policy" not in response
            and response.get("Content-Type", "").startswith("text/html")
            and not request.path.startswith(settings.CONTENT_SECURITY_POLICY_EXEMPT_PATHS)
            and not (settings.DEBUG and response.status_code >= 400 and not is_dashboard_response(response))
        ):
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        return response


#: Paths that are not the dashboard's: the API answers JSON, the admin and the API reference keep Django's pages.
NOT_DASHBOARD_PATHS = ("/v1/", "/admin/", "/docs/", "/oauth/", "/static/", "/healthz", "/readyz")
#: Exceptions Django answers with a 4xx of its own (400, 403): not server errors.
CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation, MultiPartParserError)


def is_dashboard_path(path: str) -> bool:
    return path != "/v1" and not path.startswith(NOT_DASHBOARD_PATHS)


def mark_dashboard_response(response):
    """Note that the dashboard rendered ``response`` itself (no inline code: the CSP applies even under DEBUG)."""
    response.dashboard_rendered = True
    return response


def is_dashboard_response(response) -> bool:
    return getattr(response, "dashboard_rendered", False)


class DashboardErrorPagesMiddleware:
    """The dashboard's own "Page not found" and "Something went wrong" pages on its URLs, also when DEBUG is on.

    Without DEBUG, Django renders them itself (``handler404``, ``handler500``: ``templates/404.html`` and
    ``500.html``). With DEBUG it would show its technical pages instead; on the dashboard's URLs this
    middleware shows the real ones (the error and its traceback are logged, as Django logs a 500), so
    what a developer sees is what a customer sees. /v1 answers JSON either way; /admin/ and /docs/ keep
    Django's debug pages.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and response.get("Content-Type", "").startswith("text/html")
            and is_dashboard_path(request.path)
        ):
            # Django's technical 404 (no URL matched, or a view raised Http404): the page a customer gets.
            return mark_dashboard_response(get_resolver().resolve_error_handler(404)(request, Http404()))
        return response

    def process_exception(self, request, exception):
        if not settings.DEBUG or isinstance(exception, CLIENT_ERRORS) or not is_dashboard_path(request.path):
            return None
        response = get_resolver().resolve_error_handler(500)(request)
        log_response("Internal Server Error: %s", request.path, response=response, request=request, exception=exception)
        return mark_dashboard_response(response)
