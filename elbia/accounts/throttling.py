"""Attempt counters for the dashboard's sign-in and sign-up forms, shared by every web process.

Each counter is a fixed window in the Django cache (Redis in production):
``cache.add`` starts the window with its expiry, ``cache.incr`` then counts
atomically (django-redis increments in a Lua script that keeps the key's TTL),
so concurrent attempts from many processes can never slip past the limit
together. Every attempt is counted *before* the password is checked, so a burst
of parallel guesses is cut off at the limit exactly; a successful one is then
taken back, so only failures use up the window.
"""

import contextlib
import hashlib

from django.core.cache import cache


def _cache_key(bucket: str, identity: str) -> str:
    # Hash the identity: usernames are user input, and cache keys must stay short and plain.
    digest = hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"attempts:{bucket}:{digest}"


def attempt_count(*, bucket: str, identity: str, window: float) -> int:
    """Count one attempt by ``identity`` in ``bucket`` and return the attempts made in the current window."""
    key = _cache_key(bucket, identity)
    timeout = max(1, int(window))
    if cache.add(key, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # the window ended between add and incr: this attempt opens the next one
        cache.add(key, 1, timeout=timeout)
        return 1


def attempt_forgive(*, bucket: str, identity: str) -> None:
    """Take back one counted attempt (it succeeded), so only failures use up the window."""
    with contextlib.suppress(ValueError):  # the window has ended meanwhile: nothing to take back
        cache.decr(_cache_key(bucket, identity))


def attempts_reset(*, bucket: str, identity: str) -> None:
    """Forget the attempts of ``identity`` in ``bucket`` (after a successful sign-in)."""
    cache.delete(_cache_key(bucket, identity))
