"""The cache, degraded gracefully: Redis while it answers, this process's memory while it does not.

The dashboard keeps small, short-lived state in the cache: sign-in and sign-up attempt counters and the
one-time ids of token forms. When Redis is down (or hangs: ``REDIS_SOCKET_TIMEOUT``) these calls fall back
to a local-memory cache of this process for ``RETRY_SECONDS`` before Redis is tried again, so a page
keeps working: limits then count per process (each web process allows the limit: looser, never off), as
the API's rate limits do (elbia.api.throttling). Only these helpers fall back; code that must not
silently lose its state uses ``django.core.cache`` directly.
"""

import logging
import time

from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

#: After Redis failed, use the local cache alone for this long before trying Redis again.
RETRY_SECONDS = 5.0
UNREACHABLE = (ConnectionInterrupted, RedisError, OSError)

_local = LocMemCache("elbia-fallback", {"OPTIONS": {"MAX_ENTRIES": 10_000}})
_redis_down_until = 0.0


def _call(method: str, *args, **kwargs):
    global _redis_down_until
    if time.monotonic() >= _redis_down_until:
        try:
            return getattr(cache, method)(*args, **kwargs)
        except UNREACHABLE as exc:
            _redis_down_until = time.monotonic() + RETRY_SECONDS
            logger.warning("The cache is unreachable (%s); using this process's memory for %ss.", exc, RETRY_SECONDS)
    return getattr(_local, method)(*args, **kwargs)


def add(key: str, value, timeout: float) -> bool:
    """``cache.add``: store ``value`` unless ``key`` holds one; True if stored."""
    return _call("add", key, value, timeout=timeout)


def incr(key: str) -> int:
    """``cache.incr``: add one to ``key`` (ValueError if it holds nothing) and return the new value."""
    return _call("incr", key)


def decr(key: str) -> int:
    """``cache.decr``: take one from ``key`` (ValueError if it holds nothing)."""
    return _call("decr", key)


def delete(key: str) -> None:
    """``cache.delete``."""
    _call("delete", key)


def clear_local() -> None:
    """Forget the fallback's contents and try Redis at once (tests)."""
    global _redis_down_until
    _local.clear()
    _redis_down_until = 0.0
