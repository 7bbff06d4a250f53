"""Liveness (``/healthz``) and readiness (``/readyz``: database, cache and broker reachable).

Each check is bounded by its dependency's own timeouts (DATABASE_CONNECT_TIMEOUT and
DATABASE_STATEMENT_TIMEOUT, REDIS_CONNECT_TIMEOUT and REDIS_SOCKET_TIMEOUT): a dependency that hangs
makes /readyz answer 503 naming it within seconds, never hang.
"""

import logging
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from elbia.celery import app as celery_app

logger = logging.getLogger(__name__)


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def check_cache() -> None:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)


def check_broker() -> None:
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=0, timeout=settings.REDIS_CONNECT_TIMEOUT)


CHECKS = {"database": check_database, "cache": check_cache, "broker": check_broker}


@never_cache
def healthz(request) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log
            logger.warning("Readiness check %s failed: %s", name, exc)
            results[name] = "unavailable"
    failing = [name for name, state in results.items() if state != "ok"]
    body = {"status": "unavailable" if failing else "ok", "checks": results}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)
