"""Concurrency slots for invocations: at most ``ELBIA_FUNCTION_CONCURRENCY`` runs of one function and
``ELBIA_ACCOUNT_CONCURRENCY`` runs of one account's functions at once.

A slot is a lease that expires: it is taken for the function's timeout plus a margin and given back when
the run ends, so a process that dies mid-run (a killed web worker) holds its slots only until then.

- With Redis (``REDIS_URL``): two sorted sets (the function's, the account's) of lease ids scored by their
  expiry in Redis's own clock; one Lua script drops the expired leases, checks both counts and adds the
  lease to both, so concurrent callers in any number of processes never exceed a limit.
- Without Redis (the embedded default of ``make run``), or while Redis fails: the running ``Invocation``
  rows are the leases (``lease_expires_at``), counted under a transaction-level advisory lock per account
  on PostgreSQL (SQLite serializes writing transactions by itself). The caller marks its row running in the
  same transaction (``acquire_in_database``), so a slot is counted from the moment it is granted.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from redis.exceptions import RedisError

from elbia.api.throttling import redis_failed, run_script, shared_redis
from elbia.errors import LimitReached
from functions.models import Function, Invocation, InvocationStatus

logger = logging.getLogger(__name__)

KEY_PREFIX = "elbia:cc:"
#: A lease outlives the function's timeout by this much: a cold start's init and the exchange with the runner.
LEASE_MARGIN_S = 30
#: What a 429 asks the caller to wait, in seconds (slots free up as runs end).
RETRY_AFTER_S = 1
# The first half of the two-integer advisory lock key: "conc" in ASCII.
_LOCK_NAMESPACE = 0x636F6E63
_INT4 = 2**31

# KEYS: the function's set, the account's set. ARGV: lease id, lease length (ms), function limit, account limit.
# -> 1 when the lease is taken, 0 when the function is at its limit, -1 when the account is.
ACQUIRE_LUA = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local expires = now_ms + tonumber(ARGV[2])
for i = 1, 2 do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now_ms)
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return -1 end
for i = 1, 2 do
    redis.call('ZADD', KEYS[i], expires, ARGV[1])
    if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[2]) then
        redis.call('PEXPIRE', KEYS[i], ARGV[2])
    end
end
return 1
"""


def lease_seconds(function: Function) -> int:
    return function.timeout_s + LEASE_MARGIN_S


def lease_expiry(function: Function, now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(seconds=lease_seconds(function))


def _keys(function: Function) -> list[str]:
    return [f"{KEY_PREFIX}f:{function.pk}", f"{KEY_PREFIX}a:{function.account_id}"]


def _refusal(function_full: bool) -> LimitReached:
    if function_full:
        return LimitReached(
            f"This function already runs {settings.ELBIA_FUNCTION_CONCURRENCY} invocations at once (the limit).",
            retry_after=RETRY_AFTER_S,
        )
    return LimitReached(
        f"This account's functions already run {settings.ELBIA_ACCOUNT_CONCURRENCY} invocations at once (the limit).",
        retry_after=RETRY_AFTER_S,
    )


def acquire(function: Function, lease_id: str) -> bool:
    """Take a slot in Redis for ``lease_id``: True when taken, ``LimitReached`` when a limit is reached.

    False when there is no shared Redis to count in: the caller counts in the database instead
    (``acquire_in_database``, in the transaction that marks its invocation running).
    """
    client = shared_redis()
    if client is None:
        return False
    try:
        taken = run_script(
            client,
            ACQUIRE_LUA,
            _keys(function),
            [
                lease_id,
                lease_seconds(function) * 1000,
                settings.ELBIA_FUNCTION_CONCURRENCY,
                settings.ELBIA_ACCOUNT_CONCURRENCY,
            ],
        )
    except (RedisError, OSError) as exc:
        redis_failed(exc)
        return False
    if int(taken) != 1:
        raise _refusal(int(taken) == 0)
    return True


def release(function: Function, lease_id: str) -> None:
    """Give the Redis slot of ``lease_id`` back (it expires anyway if this never runs)."""
    client = shared_redis()
    if client is None:
        return
    try:
        pipeline = client.pipeline(transaction=False)
        for key in _keys(function):
            pipeline.zrem(key, lease_id)
        pipeline.execute()
    except (RedisError, OSError) as exc:
        redis_failed(exc)


def acquire_in_database(function: Function) -> None:
    """Check the limits against the running invocations in the database; ``LimitReached`` beyond them.

    Call it inside the transaction that then marks the caller's invocation running (with its
    ``lease_expires_at``): the advisory lock, held to the commit, keeps concurrent callers in line.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_LOCK_NAMESPACE, function.account_id % _INT4])
    running = Invocation.objects.filter(
        account_id=function.account_id, status=InvocationStatus.RUNNING, lease_expires_at__gt=timezone.now()
    )
    counts = running.values_list("function_id", flat=True)
    function_ids = list(counts[: settings.ELBIA_ACCOUNT_CONCURRENCY])
    if function_ids.count(function.pk) >= settings.ELBIA_FUNCTION_CONCURRENCY:
        raise _refusal(True)
    if len(function_ids) >= settings.ELBIA_ACCOUNT_CONCURRENCY:
        raise _refusal(False)
