"""Request budgets: per token family or client IP, atomic in Redis, headers on every /v1 answer, 429 when spent."""

import logging
import threading
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from django_redis import get_redis_connection
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from elbia.accounts.models import ApiToken, RateLimitWindow
from elbia.accounts.services import token_set_rate_limit
from elbia.api import throttling
from elbia.config import parse_rate

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.probe_views")]

URL = "/v1/regions"
LOCAL_MEMORY_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


def limits(response) -> tuple[int, int, int]:
    """(limit, remaining, reset) from the X-RateLimit-* headers."""
    return (
        int(response["X-RateLimit-Limit"]),
        int(response["X-RateLimit-Remaining"]),
        int(response["X-RateLimit-Reset"]),
    )


def assert_rate_limited(response, limit: int) -> None:
    assert response.status_code == 429
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("rate_limited", "Rate limit exceeded")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert limits(response)[:2] == (limit, 0)


def client_from(ip: str, token: str | None = None, **extra) -> APIClient:
    client = APIClient(REMOTE_ADDR=ip, **extra)
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def small_budget(make_client, user):
    """A client whose token has its own budget of 3 requests a minute."""
    return make_client(user, rate_limit="3/minute")


@pytest.fixture(autouse=True)
def _fresh_process_state():
    throttling.local_budgets.clear()
    throttling._redis_retry_at = 0.0
    throttling._last_warning_at = float("-inf")
    yield
    throttling.local_budgets.clear()
    throttling._redis_retry_at = 0.0


class TestTokenBudget:
    def test_headers_count_down_the_default_budget(self, api):
        before = time.time()
        first, second = api.get(URL), api.get(URL)
        assert first.status_code == second.status_code == 200
        limit, remaining, reset = limits(first)
        assert (limit, remaining) == (5000, 4999)
        assert before + 3600 - 1 <= reset <= time.time() + 3600 + 1
        assert limits(second) == (5000, 4998, reset)

    def test_over_its_own_limit_the_token_gets_429(self, small_budget):
        answers = [small_budget.get(URL) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [limits(a)[1] for a in answers] == [2, 1, 0, 0]
        assert_rate_limited(answers[3], limit=3)
        assert limits(answers[3])[2] == limits(answers[0])[2]  # the same window

    def test_every_kind_of_answer_is_counted_and_carries_the_headers(self, make_client, user):
        client = make_client(user, scopes=["resources:read"], rate_limit="10/minute")
        ok = client.get(URL)
        missing = client.get("/v1/probe/missing")
        forbidden = client.post("/v1/probe/resources", {"name": "x"}, format="json")
        not_allowed = client.delete(URL)
        assert [r.status_code for r in (ok, missing, forbidden, not_allowed)] == [200, 404, 403, 405]
        assert [limits(r)[1] for r in (ok, missing, forbidden, not_allowed)] == [9, 8, 7, 6]

    def test_a_budget_survives_token_renewal(self, small_budget):
        assert small_budget.get(URL).status_code == 200
        grant = {"grant_type": "refresh_token", "refresh_token": small_budget.issued.refresh_token}
        renewed = APIClient().post("/oauth/token/", {**grant, "client_id": "elbia-cli"})
        assert renewed.status_code == 200, renewed.content
        client = client_from("127.0.0.1", renewed.json()["access_token"])
        assert limits(client.get(URL))[1] == 1
        assert client.get(URL).status_code == 200
        assert_rate_limited(client.get(URL), limit=3)

    def test_tokens_have_budgets_of_their_own(self, small_budget, make_client, user):
        for _ in range(3):
            small_budget.get(URL)
        assert small_budget.get(URL).status_code == 429
        other = make_client(user, rate_limit="3/minute")
        assert other.get(URL).status_code == 200

    def test_a_changed_limit_applies_to_the_next_request(self, small_budget):
        for _ in range(3):
            small_budget.get(URL)
        assert small_budget.get(URL).status_code == 429
        token_set_rate_limit(api_token=small_budget.issued.api_token, rate_limit="5/minute")
        response = small_budget.get(URL)
        assert response.status_code == 200
        assert limits(response)[:2] == (5, 1)  # the window's 3 earlier requests still count

    def test_a_stored_limit_that_does_not_parse_falls_back_to_the_default(self, small_budget):
        ApiToken.objects.update(rate_limit="lots")
        response = small_budget.get(URL)
        assert response.status_code == 200
        assert limits(response)[0] == settings.ELBIA_RATE_LIMIT.limit

    def test_the_window_resets_when_its_period_ends(self, small_budget):
        for _ in range(3):
            small_budget.get(URL)
        assert small_budget.get(URL).status_code == 429
        client = get_redis_connection("default")
        (key,) = client.keys(f"{throttling.KEY_PREFIX}token:*")
        client.pexpire(key, 1)  # the minute is over
        time.sleep(0.01)
        response = small_budget.get(URL)
        assert response.status_code == 200
        assert limits(response)[1] == 2


class TestClientIP:
    @override_settings(ELBIA_RATE_LIMIT=parse_rate("2/minute"))
    def test_requests_without_a_token_are_budgeted_per_ip(self):
        one, two = client_from("198.51.100.1"), client_from("198.51.100.2")
        answers = [one.get(URL) for _ in range(3)]
        assert [a.status_code for a in answers] == [401, 401, 429]
        assert [limits(a)[1] for a in answers] == [1, 0, 0]
        assert_rate_limited(answers[2], limit=2)
        assert two.get(URL).status_code == 401

    @override_settings(ELBIA_RATE_LIMIT=parse_rate("2/minute"))
    def test_x_forwarded_for_is_ignored_by_default(self):
        for forged in ("192.0.2.1", "192.0.2.2"):
            client_from("198.51.100.1", HTTP_X_FORWARDED_FOR=forged).get(URL)
        assert client_from("198.51.100.1", HTTP_X_FORWARDED_FOR="192.0.2.3").get(URL).status_code == 429

    @override_settings(ELBIA_RATE_LIMIT=parse_rate("2/minute"), ELBIA_TRUSTED_PROXY_COUNT=1)
    def test_behind_a_trusted_proxy_the_forwarded_address_counts(self):
        for _ in range(2):
            client_from("10.0.0.5", HTTP_X_FORWARDED_FOR="forged, 192.0.2.1").get(URL)
        assert client_from("10.0.0.5", HTTP_X_FORWARDED_FOR="192.0.2.1").get(URL).status_code == 429
        assert client_from("10.0.0.5", HTTP_X_FORWARDED_FOR="192.0.2.1, 192.0.2.9").get(URL).status_code == 401

    @override_settings(ELBIA_RATE_LIMIT=parse_rate("2/minute"))
    def test_ipv6_clients_share_their_64_bit_prefix(self):
        client_from("2001:db8::1").get(URL)
        client_from("2001:db8::2").get(URL)
        assert client_from("2001:db8::ffff").get(URL).status_code == 429
        assert client_from("2001:db8:0:1::1").get(URL).status_code == 401

    def test_a_request_refused_before_authentication_is_charged_to_its_ip(self, api):
        response = api.get(URL, HTTP_ACCEPT="application/xml")
        assert response.status_code == 406
        assert limits(response)[1] == 4999


class TestBadTokens:
    @pytest.fixture(autouse=True)
    def _small_auth_budget(self, settings):
        settings.ELBIA_AUTH_RATE_LIMIT = parse_rate("3/minute")

    def test_an_ip_sending_bad_tokens_is_refused_before_any_lookup(self, api, django_assert_num_queries):
        attacker = client_from("203.0.113.9", "elb_at_guessed")
        assert [attacker.get(URL).status_code for _ in range(3)] == [401, 401, 401]
        with django_assert_num_queries(0):
            refused = attacker.get(URL)
        assert_rate_limited(refused, limit=3)
        # Until the window ends that IP is refused before its token is looked up, good tokens too.
        assert client_from("203.0.113.9", api.issued.access_token).get(URL).status_code == 429
        assert client_from("203.0.113.10", api.issued.access_token).get(URL).status_code == 200
        assert client_from("203.0.113.10", "elb_at_guessed").get(URL).status_code == 401

    def test_expired_tokens_count_as_bad(self, small_budget):
        AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
        assert [small_budget.get(URL).status_code for _ in range(4)] == [401, 401, 401, 429]

    def test_malformed_headers_cost_no_lookup_and_do_not_count(self):
        client = client_from("203.0.113.9")
        statuses = [client.get(URL, HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz").status_code for _ in range(5)]
        assert statuses == [401] * 5

    def test_good_tokens_do_not_count(self, api):
        assert all(api.get(URL).status_code == 200 for _ in range(5))


class TestTokenEndpoint:
    @pytest.fixture(autouse=True)
    def _small_auth_budget(self, settings):
        settings.ELBIA_AUTH_RATE_LIMIT = parse_rate("2/minute")

    def renew(self, ip: str):
        return client_from(ip).post(
            "/oauth/token/", {"grant_type": "refresh_token", "refresh_token": "elb_rt_nope", "client_id": "elbia-cli"}
        )

    def test_token_endpoint_is_budgeted_per_ip(self):
        answers = [self.renew("198.51.100.7") for _ in range(3)]
        assert [a.status_code for a in answers[:2]] == [400, 400]
        assert [limits(a)[1] for a in answers] == [1, 0, 0]
        assert_rate_limited(answers[2], limit=2)
        assert self.renew("198.51.100.8").status_code == 400


class TestStorage:
    def test_concurrent_hits_never_exceed_the_limit(self):
        rate = parse_rate("20/minute")
        start = threading.Barrier(10, timeout=10)
        decisions = []

        def worker():
            start.wait()
            decisions.extend(throttling.hit("race", rate) for _ in range(10))

        threads = [threading.Thread(target=worker) for _ in range(10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)
        allowed = [d for d in decisions if d.allowed]
        assert len(decisions) == 100
        assert sorted(d.remaining for d in allowed) == list(range(20))
        assert all(d.retry_after >= 1 and d.remaining == 0 for d in decisions if not d.allowed)

    def test_without_redis_budgets_are_kept_in_the_database(self, small_budget):
        with override_settings(CACHES=LOCAL_MEMORY_CACHE):
            answers = [small_budget.get(URL) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert [limits(a)[1] for a in answers] == [2, 1, 0, 0]
        assert not get_redis_connection("default").keys(f"{throttling.KEY_PREFIX}*")
        family = small_budget.issued.api_token.token_family
        assert RateLimitWindow.objects.filter(key=f"{throttling.KEY_PREFIX}token:{family}:60").exists()

    def test_a_database_window_that_ended_starts_afresh(self, small_budget):
        with override_settings(CACHES=LOCAL_MEMORY_CACHE):
            for _ in range(4):
                small_budget.get(URL)
            RateLimitWindow.objects.update(ends_at_ms=int(time.time() * 1000) - 1)
            answer = small_budget.get(URL)
        assert answer.status_code == 200
        assert limits(answer)[1] == 2
        assert time.time() + 58 <= limits(answer)[2] <= time.time() + 61

    def test_bad_tokens_are_counted_in_the_database_too(self, settings):
        settings.ELBIA_AUTH_RATE_LIMIT = parse_rate("2/minute")
        client = client_from("203.0.113.77", "elb_at_not-a-real-token")
        with override_settings(CACHES=LOCAL_MEMORY_CACHE):
            answers = [client.get(URL) for _ in range(3)]
        assert [a.status_code for a in answers] == [401, 401, 429]

    def test_unreachable_redis_fails_open_and_warns_once(self, small_budget, caplog):
        closed = {"default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"}}
        with override_settings(CACHES=closed), caplog.at_level(logging.WARNING, logger="elbia.api.throttling"):
            answers = [small_budget.get(URL) for _ in range(4)]
            throttling._redis_retry_at = 0.0  # past the pause: Redis is tried again, and still fails
            answers.append(small_budget.get(URL))
        # Served on this process's own counts meanwhile, with the same headers.
        assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
        assert [limits(a)[1] for a in answers] == [2, 1, 0, 0, 0]
        warnings = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
        assert len(warnings) == 1

        throttling._redis_retry_at = 0.0  # Redis is back: counts are shared again
        assert limits(small_budget.get(URL))[1] == 2
        assert get_redis_connection("default").keys(f"{throttling.KEY_PREFIX}token:*")
