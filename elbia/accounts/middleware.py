"""Content-Security-Policy for the dashboard's HTML pages."""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    """Send ``settings.CONTENT_SECURITY_POLICY`` with every HTML page but the exempt ones.

    The dashboard serves every script and stylesheet from /static/ and has no inline
    script or style, so the policy allows 'self' only. The admin and the Swagger UI
    at /docs/ are third-party pages with inline code: they are exempt by path
    (``CONTENT_SECURITY_POLICY_EXEMPT_PATHS``), and so are Django's debug error pages.
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
            and not (settings.DEBUG and response.status_code >= 400)
        ):
            response["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY
        return response
