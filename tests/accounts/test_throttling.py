"""The sign-in attempt counters: atomic across concurrent requests, windowed, forgiving successes."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache

from elbia.accounts.throttling import attempt_count, attempt_forgive, attempts_reset


def test_concurrent_attempts_are_each_counted_once():
    with ThreadPoolExecutor(max_workers=16) as pool:
        counts = list(pool.map(lambda _: attempt_count(bucket="t", identity="x", window=60), range(64)))
    assert sorted(counts) == list(range(1, 65))


def test_the_window_is_set_by_the_first_attempt_and_kept():
    if not hasattr(cache, "ttl"):
        pytest.skip("needs the Redis cache (make test uses it)")
    attempt_count(bucket="t", identity="y", window=60)
    (key,) = cache.keys("attempts:t:*")
    cache.expire(key, 30)  # as if 30 seconds of the window had passed
    attempt_count(bucket="t", identity="y", window=60)
    attempt_forgive(bucket="t", identity="y")
    assert 0 < cache.ttl(key) <= 30  # counting does not extend the window


def test_forgive_and_reset():
    for _ in range(3):
        attempt_count(bucket="t", identity="z", window=60)
    attempt_forgive(bucket="t", identity="z")
    assert attempt_count(bucket="t", identity="z", window=60) == 3
    attempts_reset(bucket="t", identity="z")
    attempt_forgive(bucket="t", identity="z")  # nothing to take back: no error
    assert attempt_count(bucket="t", identity="z", window=60) == 1


def test_identities_do_not_share_a_counter():
    attempt_count(bucket="t", identity="alice", window=60)
    assert attempt_count(bucket="t", identity="bob", window=60) == 1
    assert attempt_count(bucket="other", identity="alice", window=60) == 1
