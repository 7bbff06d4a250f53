"""Host ports are validated with the host: Django's ``ALLOWED_HOSTS`` check ignores the port; this does not.

``ALLOWED_HOSTS`` entries may name a port (``api.example.com:8443``) or any port (``localhost:*``); a
host named without one is served on the default ports only (none, 80, 443). See elbia.config's
``parse_allowed_hosts``. A Host header whose port is not allowed is refused like a disallowed host:
400, in JSON under /v1 and /oauth/ (elbia.api.errors.bad_request).
"""

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http.request import split_domain_port
from django.utils.http import is_same_domain


class HostPortMiddleware:
    """Refuse a request whose Host header names a port its host is not served on."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        host = request.get_host()  # raises DisallowedHost for a host Django's ALLOWED_HOSTS refuses
        domain, port = split_domain_port(host)
        entries = [
            entry for entry in settings.ELBIA_ALLOWED_HOSTS if entry.host == "*" or is_same_domain(domain, entry.host)
        ]
        if not any(entry.allows_port(port) for entry in entries):
            raise DisallowedHost(f"Invalid HTTP_HOST header: {host!r}. Its port is not served.")
        return self.get_response(request)
