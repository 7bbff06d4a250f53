"""The HTTP side of the metrics: ``MetricsMiddleware`` records every request, ``metrics_view`` serves ``/metrics``.

``/metrics`` is not part of the public API: it answers only a request carrying ``Authorization: Bearer
<ELBIA_METRICS_TOKEN>``; without the token configured, or with a missing or wrong one, it is the same 404 as
any unknown path, so the public cannot tell it exists.
"""

import hmac
import re
import time
from functools import lru_cache

from django.conf import settings
from django.http import Http404, HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from elbia.api import headers
from elbia.observability import logs, metrics

_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")
#: A pattern that takes whatever is left of the path (a catch-all 404 view): its requests matched no route.
_CATCH_ALL = re.compile(r"\.\*|<path:url>")


@lru_cache(maxsize=1024)
def route_template(route: str) -> str:
    """A resolver route as a label: ``v1/resources/(?P<id>[^/]+)$`` -> ``/v1/resources/{id}``,
    ``admin/<path:object_id>/`` -> ``/admin/{object_id}/``; a catch-all (the JSON 404 of /v1, the admin's) ->
    ``unmatched``.
    """
    if _CATCH_ALL.search(route):
        return metrics.UNMATCHED_ROUTE
    template = _CONVERTER.sub(r"{\1}", _NAMED_GROUP.sub(r"{\1}", route))
    return "/" + template.replace("^", "").replace("$", "").replace("\\", "")


def request_route(request) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return route_template(match.route)
    if request.path.startswith(settings.STATIC_URL):
        return "static"  # whitenoise answers before URL resolution
    return metrics.UNMATCHED_ROUTE


class MetricsMiddleware:
    """Counts every answer by route template, method and status, and times it; counts 429s and replays; with
    ``LOG_FORMAT=json``, logs the request's line (``elbia.observability.logs``)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = request_route(request)
        method = request.method if request.method in metrics.METHODS else "other"
        metrics.http_requests.labels(route, method, str(response.status_code)).inc()
        metrics.http_request_duration.labels(route, method).observe(elapsed)
        if response.status_code == 429:
            metrics.http_rate_limited.labels(route).inc()
        if response.get(headers.IDEMPOTENT_REPLAYED) == "true":
            metrics.http_idempotent_replays.labels(route).inc()
        if settings.LOG_REQUESTS:
            logs.log_request(request, response, route=route, method=method, seconds=elapsed)
        return response


def _authorized(request) -> bool:
    token = settings.ELBIA_METRICS_TOKEN
    if not token:
        return False
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode())


@never_cache
def metrics_view(request):
    """The Prometheus exposition of every metric (all processes of this server added up), for the bearer token."""
    if not _authorized(request):
        raise Http404
    return HttpResponse(generate_latest(metrics.scrape_registry()), content_type=CONTENT_TYPE_LATEST)
