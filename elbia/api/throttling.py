"""Request budgets: one atomic fixed-window counter per identity, shared by every web process.

With ``REDIS_URL`` the counters live in Redis (one Lua script per request); without it (the embedded
default of ``make run``) in the database, one atomic UPSERT per request, so several gunicorn workers
still share one budget per token.

Every /v1 request is charged once to its identity: the API token's family (so a
renewed token keeps its budget) or, without a valid token, the client's IP.
Over the budget the answer is ``429 rate_limited`` with ``Retry-After``; every
charged response carries ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and
``X-RateLimit-Reset``. See docs/rate-limits-and-idempotency.md.

Interfaces for other parts:

- ``TokenRateThrottle``: DRF's ``DEFAULT_THROTTLE_CLASSES``, so every /v1 view has it.
- ``hit(key, rate) -> Decision``: charge one request to any budget (``Decision.allowed``).
- ``ip_rate_limited(scope)``: decorator for a plain Django view (the OAuth token
  endpoint, the dashboard login) that budgets its POSTs per client IP.
"""

import functools
import ipaddress
import logging
import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django_redis import get_redis_connection
from redis.exceptions import RedisError
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from elbia.api import headers
from elbia.api.responses import RATE_LIMITED, json_error
from elbia.config import Rate, parse_rate

logger = logging.getLogger(__name__)

KEY_PREFIX = "elbia:rl:"
# After Redis fails, count in this process alone for this long before trying Redis again.
REDIS_RETRY_SECONDS = 5.0
# Say that Redis is unreachable at most this often per process.
WARNING_INTERVAL_SECONDS = 60.0

# Fixed window anchored at the first request: the window's key lives exactly one
# period. Reading, testing and counting happen in one script, so concurrent
# requests from any number of processes can never exceed the limit.
# charge(key, limit, period in ms, count the request?)
#   -> {allowed (1/0), count after this call, milliseconds until the window ends}
WINDOW_LUA = """
local function charge(key, limit, period_ms, consume)
    local ttl = redis.call('PTTL', key)
    local count = 0
    if ttl > 0 then
        count = tonumber(redis.call('GET', key) or '0')
    else
        ttl = period_ms
    end
    if count >= limit then
        return {0, count, ttl}
    end
    if consume then
        if count == 0 then
            redis.call('SET', key, 1, 'PX', period_ms)
            ttl = period_ms
        else
            redis.call('INCR', key)
        end
        count = count + 1
    end
    return {1, count, ttl}
end
"""
# KEYS[1] = counter; ARGV = limit, period in ms, 1 to count the request (0 to only look).
FIXED_WINDOW_LUA = WINDOW_LUA + "return charge(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3] == '1')"


@dataclass(frozen=True)
class Decision:
    """The outcome of charging (or looking at) one budget."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # epoch seconds at which the budget is full again
    retry_after: int  # seconds to wait when not allowed

    def headers(self) -> dict[str, str]:
        return {
            headers.RATE_LIMIT_LIMIT: str(self.limit),
            headers.RATE_LIMIT_REMAINING: str(self.remaining),
            headers.RATE_LIMIT_RESET: str(self.reset),
        }


def _decision(rate: Rate, allowed: bool, count: int, ms_left: float) -> Decision:
    seconds_left = max(ms_left, 0) / 1000
    return Decision(
        allowed=allowed,
        limit=rate.limit,
        remaining=max(rate.limit - count, 0),
        reset=math.ceil(time.time() + seconds_left),
        retry_after=0 if allowed else max(math.ceil(seconds_left), 1),
    )


class LocalBudgets:
    """The same fixed windows in this process's memory: the embedded default, and the fallback while Redis is down."""

    PRUNE_ABOVE = 10_000

    def __init__(self):
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window end, monotonic seconds; count)

    def apply(self, key: str, rate: Rate, consume: bool) -> tuple[bool, int, float]:
        now = time.monotonic()
        with self._lock:
            ends, count = self._windows.get(key, (0.0, 0))
            if ends <= now:
                ends, count = now + rate.period, 0
            allowed = count < rate.limit
            if allowed and consume:
                count += 1
                if len(self._windows) >= self.PRUNE_ABOVE:
                    self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
                self._windows[key] = (ends, count)
            return allowed, count, (ends - now) * 1000

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()


class DatabaseBudgets:
    """The same windows in the database (``accounts.RateLimitWindow``): the embedded default, without Redis.

    Charging is one statement, atomic on SQLite and PostgreSQL alike: insert the window, or update it in
    place (a new window once the old one ended; else one more request, saturating at limit + 1) and return
    the row. A request is allowed when the count it returns is within the limit.
    """

    TABLE = "accounts_ratelimitwindow"
    PRUNE_EVERY = 1000  # charges per process between deletions of ended windows

    CHARGE_SQL = f"""
        INSERT INTO {TABLE} (key, ends_at_ms, count) VALUES (%(key)s, %(ends)s, 1)
        ON CONFLICT (key) DO UPDATE SET
            count = CASE
                WHEN {TABLE}.ends_at_ms <= %(now)s THEN 1
                WHEN {TABLE}.count <= %(limit)s THEN {TABLE}.count + 1
                ELSE {TABLE}.count
            END,
            ends_at_ms = CASE WHEN {TABLE}.ends_at_ms <= %(now)s THEN %(ends)s ELSE {TABLE}.ends_at_ms END
        RETURNING count, ends_at_ms
    """  # noqa: S608 (no user input in the table name)

    def __init__(self):
        self._charges = 0

    def apply(self, key: str, rate: Rate, consume: bool) -> tuple[bool, int, float]:
        now = int(time.time() * 1000)
        ends = now + rate.period * 1000
        with connection.cursor() as cursor:
            if consume:
                cursor.execute(self.CHARGE_SQL, {"key": key, "now": now, "ends": ends, "limit": rate.limit})
                count, ends = cursor.fetchone()
                allowed = count <= rate.limit
                self._charges += 1
                if self._charges % self.PRUNE_EVERY == 0:
                    cursor.execute(f"DELETE FROM {self.TABLE} WHERE ends_at_ms <= %s", [now])  # noqa: S608
            else:
                cursor.execute(f"SELECT count, ends_at_ms FROM {self.TABLE} WHERE key = %s", [key])  # noqa: S608
                row = cursor.fetchone()
                count, ends = row if row and row[1] > now else (0, ends)
                allowed = count < rate.limit
        return allowed, min(count, rate.limit), ends - now


local_budgets = LocalBudgets()
database_budgets = DatabaseBudgets()
_scripts: dict[str, object] = {}
_redis_retry_at = 0.0
_last_warning_at = -math.inf


def _redis():
    """The raw Redis client behind the cache, or ``None`` on the local-memory cache."""
    try:
        return get_redis_connection("default")
    except NotImplementedError:
        return None


def shared_redis():
    """The raw Redis client every web process shares, or ``None`` (local-memory cache, or Redis failing lately)."""
    return _redis() if time.monotonic() >= _redis_retry_at else None


def redis_failed(exc: Exception) -> None:
    """Note that Redis failed: for ``REDIS_RETRY_SECONDS`` this process works on its own (said once a minute)."""
    global _redis_retry_at, _last_warning_at
    now = time.monotonic()
    _redis_retry_at = now + REDIS_RETRY_SECONDS
    if now - _last_warning_at >= WARNING_INTERVAL_SECONDS:
        _last_warning_at = now
        logger.warning("Rate limits: Redis is unreachable (%s); counting per process meanwhile.", exc)


def run_script(client, source: str, keys: list, args: list):
    """Run a Lua script (registered once per process, then sent by its SHA)."""
    script = _scripts.get(source)
    if script is None:
        script = _scripts[source] = client.register_script(source)
    return script(keys=keys, args=args, client=client)


def budget_key(key: str, rate: Rate) -> str:
    """The Redis key of the budget ``key`` at ``rate`` (a changed period starts a new window)."""
    return f"{KEY_PREFIX}{key}:{rate.period}"


def _apply(key: str, rate: Rate, consume: bool) -> Decision:
    full_key = budget_key(key, rate)
    if _redis() is None:  # no Redis configured: the database holds the counts every process shares
        allowed, count, ms_left = database_budgets.apply(full_key, rate, consume)
        return _decision(rate, allowed, count, ms_left)
    client = shared_redis()
    if client is not None:
        try:
            allowed, count, ms_left = run_script(
                client, FIXED_WINDOW_LUA, [full_key], [rate.limit, rate.period * 1000, int(consume)]
            )
            return _decision(rate, bool(allowed), int(count), float(ms_left))
        except (RedisError, OSError) as exc:
            # Fail open: keep serving on this process's own counts rather than fail every request.
            redis_failed(exc)
    allowed, count, ms_left = local_budgets.apply(full_key, rate, consume)
    return _decision(rate, allowed, count, ms_left)


def decision_from_script(rate: Rate, allowed, count, ms_left) -> Decision:
    """The Decision of a ``charge`` run inside another script (the token lookup's)."""
    return _decision(rate, bool(allowed), int(count), float(ms_left))


def hit(key: str, rate: Rate) -> Decision:
    """Charge one request to the budget ``key`` (e.g. ``"login:203.0.113.7"``); refused once ``rate`` is spent."""
    return _apply(key, rate, consume=True)


def peek(key: str, rate: Rate) -> Decision:
    """Whether the budget ``key`` still has room, without charging it."""
    return _apply(key, rate, consume=False)


def client_address(request) -> str:
    """The client's address: ``REMOTE_ADDR``, or with ``ELBIA_TRUSTED_PROXY_COUNT`` = N > 0 the address the
    outermost of N trusted proxies put in ``X-Forwarded-For``."""
    meta = request.META
    address = meta.get("REMOTE_ADDR", "")
    proxies = settings.ELBIA_TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    return address


def client_ip(request) -> str:
    """The identity a client's address is budgeted under: IPv6 clients are grouped by /64."""
    address = client_address(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@functools.lru_cache(maxsize=256)
def _token_rate(text: str) -> Rate | None:
    try:
        return parse_rate(text)
    except ValueError:
        logger.warning("API token rate limit %r is invalid; using ELBIA_RATE_LIMIT.", text)
        return None


def _record(request, decision: Decision) -> None:
    """Keep the decision on the Django request: RateLimitHeadersMiddleware turns it into headers."""
    getattr(request, "_request", request).elbia_rate_limit = decision


def _charged(request) -> bool:
    return hasattr(getattr(request, "_request", request), "elbia_rate_limit")


def token_budget(*, rate_limit: str, token_family, access_token_id: int) -> tuple[str, Rate]:
    """The budget a token is charged to: its family's (a renewed token keeps it), at its own rate or the default."""
    rate = (rate_limit and _token_rate(rate_limit)) or settings.ELBIA_RATE_LIMIT
    return (f"token:{token_family}" if token_family else f"at:{access_token_id}"), rate


def record(request, decision: Decision) -> None:
    """Keep a decision taken elsewhere (the token lookup charges the budget in its own Redis round trip)."""
    _record(request, decision)


def _recorded(request) -> Decision | None:
    return getattr(getattr(request, "_request", request), "elbia_rate_limit", None)


class TokenRateThrottle(BaseThrottle):
    """The /v1 budget: per API token family (its own limit or ``ELBIA_RATE_LIMIT``), per client IP without a token.

    A token found in the validated-token cache was already charged in the same Redis round trip as
    its lookup (``elbia.api.authentication``): that decision stands, nothing is charged twice.
    """

    def allow_request(self, request, view) -> bool:
        recorded = _recorded(request)
        if recorded is not None:
            self.decision = recorded
            return recorded.allowed
        # Authentication has run unless the request failed before it (a 406): then it counts for its IP.
        context = request.auth if hasattr(request, "_auth") else None
        if context is not None:
            identity, rate = token_budget(
                rate_limit=context.rate_limit,
                token_family=context.token_family,
                access_token_id=context.access_token_id,
            )
        else:
            identity, rate = f"ip:{client_ip(request)}", settings.ELBIA_RATE_LIMIT
        self.decision = hit(identity, rate)
        _record(request, self.decision)
        return self.decision.allowed

    def wait(self) -> int:
        return self.decision.retry_after


def charge_stopped_request(exc: Exception, context: dict) -> Exception:
    """Charge a request that authentication or scope checks stopped before DRF's throttles ran (401, 403, ...).

    Every /v1 request then counts once and carries the headers; an identity over
    its budget gets the 429 instead of the original error.
    """
    request, view = context.get("request"), context.get("view")
    if request is None or view is None:
        return exc
    if _charged(request):
        decision = _recorded(request)
        return exc if decision.allowed else exceptions.Throttled(wait=decision.retry_after)
    for throttle in view.get_throttles():
        if not throttle.allow_request(request, view):
            return exceptions.Throttled(wait=throttle.wait())
    return exc


def _auth_rate() -> Rate:
    return settings.ELBIA_AUTH_RATE_LIMIT


def check_bad_token_budget(request) -> None:
    """Before a token's database lookup (not for a token the cache knows): refuse (429) a client IP that has
    sent too many bad tokens lately."""
    decision = peek(f"badtoken:{client_ip(request)}", _auth_rate())
    if not decision.allowed:
        _record(request, decision)
        raise exceptions.Throttled(wait=decision.retry_after)


def record_bad_token(request) -> None:
    """Count a token that was looked up and refused against its client IP."""
    hit(f"badtoken:{client_ip(request)}", _auth_rate())


def ip_rate_limited(scope: str, methods: tuple[str, ...] = ("POST",)):
    """Decorate a plain Django view so its ``methods`` are budgeted per client IP (``ELBIA_AUTH_RATE_LIMIT``).

    Over the budget the view is not called: ``429 rate_limited`` with ``Retry-After``.
    """

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return view(request, *args, **kwargs)
            decision = hit(f"{scope}:{client_ip(request)}", _auth_rate())
            if decision.allowed:
                response = view(request, *args, **kwargs)
            else:
                response = json_error(
                    429, "rate_limited", RATE_LIMITED, {headers.RETRY_AFTER: str(decision.retry_after)}
                )
            for name, value in decision.headers().items():
                response[name] = value
            return response

        return wrapper

    return decorate


class RateLimitHeadersMiddleware:
    """Adds the ``X-RateLimit-*`` headers of the request's budget to its response, whatever the status."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        decision = getattr(request, "elbia_rate_limit", None)
        if decision is not None:
            for name, value in decision.headers().items():
                response.setdefault(name, value)
        return response
