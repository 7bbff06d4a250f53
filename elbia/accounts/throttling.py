"""Attempt counters for signing in (the dashboard and the admin) and signing up, shared by every web process.

Each counter is a fixed window in the Django cache (Redis in production): ``add`` starts the window with
its expiry, ``incr`` then counts atomically (django-redis increments in a Lua script that keeps the key's
TTL), so concurrent attempts from many processes can never slip past the limit together. While Redis
does not answer, the counters live in each process's memory (elbia.cache): looser, never off.

Sign-in: at most ``ELBIA_LOGIN_ATTEMPTS`` failures in ``ELBIA_LOGIN_WINDOW`` seconds

- **per client address** (an IPv4 address, an IPv6 /64): every attempt counts before the password is
  checked (a burst of parallel guesses is cut off at the limit exactly) and a success is taken back, so
  only failures use the window up;
- **per username**, counting only attempts from addresses that have never signed in as that user
  in the last 90 days (``SignInAddress``). Guessing one user's password from many addresses is cut off, while the owner,
  from an address they signed in from before, is never locked out by someone else's guesses. An owner on
  a new address can still be held back while an attack on their username runs (the per-address limit
  alone would let a botnet guess freely); a success clears the username's window.
"""

import contextlib
import hashlib

from django.conf import settings
from django.utils import timezone

from elbia import cache
from elbia.accounts.models import SIGN_IN_ADDRESS_TRUSTED_FOR, SignInAddress


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


def sign_in_allowed(*, address: str, username: str) -> bool:
    """Count a sign-in attempt for ``username`` from ``address``; False once a limit is reached."""
    window, limit = settings.ELBIA_LOGIN_WINDOW, settings.ELBIA_LOGIN_ATTEMPTS
    if attempt_count(bucket="login-ip", identity=address, window=window) > limit:
        return False
    trusted_since = timezone.now() - SIGN_IN_ADDRESS_TRUSTED_FOR
    if SignInAddress.objects.filter(user__username=username, address=address, last_seen_at__gte=trusted_since).exists():
        return True  # the owner's own address: the username's limit is not theirs to suffer
    return attempt_count(bucket="login-user", identity=username.casefold(), window=window) <= limit


def sign_in_succeeded(*, address: str, username: str) -> None:
    """A sign-in succeeded: it does not use up the address's window, and clears the username's."""
    attempt_forgive(bucket="login-ip", identity=address)
    attempts_reset(bucket="login-user", identity=username.casefold())
