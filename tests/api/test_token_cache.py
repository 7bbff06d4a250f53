"""The validated-token cache: no query for a known token, one Redis round trip, and every revocation path at once."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django_redis import get_redis_connection
from rest_framework.test import APIClient

from elbia.accounts.models import TokenEnd
from elbia.accounts.services import token_revoke
from elbia.accounts.token_cache import ENTRY_PREFIX
from elbia.config import parse_rate

pytestmark = pytest.mark.django_db
URL = "/v1/regions"


def cached_entries() -> list:
    return get_redis_connection("default").keys(f"{ENTRY_PREFIX}*")


def test_a_known_token_costs_no_query(api, django_assert_num_queries):
    assert api.get(URL).status_code == 200  # looked up (one query), its use recorded, cached
    assert len(cached_entries()) == 1
    with django_assert_num_queries(0):
        assert api.get(URL).status_code == 200


def test_a_known_token_costs_one_redis_round_trip(api, monkeypatch):
    api.get(URL)
    client = get_redis_connection("default")
    calls = []
    real = client.execute_command

    def counted(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(client, "execute_command", counted)
    response = api.get(URL)
    assert response.status_code == 200 and int(response["X-RateLimit-Remaining"]) == 4998
    assert calls == ["EVALSHA"]  # the lookup and the rate-limit charge in one script


def test_revoking_a_cached_token_stops_it_at_once(api):
    assert api.get(URL).status_code == 200
    token_revoke(api_token=api.issued.api_token, reason=TokenEnd.BY_USER)
    assert api.get(URL).status_code == 401
    assert cached_entries() == []


def test_a_refreshed_token_leaves_the_old_access_token_dead_at_once(api):
    assert api.get(URL).status_code == 200
    grant = {
        "grant_type": "refresh_token",
        "refresh_token": api.issued.refresh_token,
        "client_id": api.issued.client_id,
    }
    renewed = APIClient().post("/oauth/token/", grant)
    assert renewed.status_code == 200
    assert api.get(URL).status_code == 401
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {renewed.json()['access_token']}")
    assert fresh.get(URL).status_code == 200


def test_a_deactivated_user_is_refused_at_once(api, user):
    assert api.get(URL).status_code == 200
    user.is_active = False
    user.save()
    assert api.get(URL).status_code == 401


def test_the_oauth_revocation_endpoint_is_honoured_at_once(api):
    assert api.get(URL).status_code == 200
    revoked = APIClient().post(
        "/oauth/revoke_token/", {"token": api.issued.access_token, "client_id": api.issued.client_id}
    )
    assert revoked.status_code == 200
    assert api.get(URL).status_code == 401


def test_a_known_token_is_not_held_to_its_ips_bad_token_budget(api, settings):
    settings.ELBIA_AUTH_RATE_LIMIT = parse_rate("2/minute")
    assert api.get(URL, REMOTE_ADDR="203.0.113.9").status_code == 200
    attacker = APIClient(REMOTE_ADDR="203.0.113.9")
    attacker.credentials(HTTP_AUTHORIZATION="Bearer elb_at_guessed")
    assert [attacker.get(URL).status_code for _ in range(3)] == [401, 401, 429]
    assert api.get(URL, REMOTE_ADDR="203.0.113.9").status_code == 200  # known: the budget is not looked at


def test_the_user_is_loaded_only_when_a_page_needs_it(api, user, django_assert_num_queries):
    from elbia.api.authentication import TokenUser

    lazy = TokenUser(user.pk, user.username)
    with django_assert_num_queries(0):
        assert lazy.pk == user.pk and lazy.username == user.username and lazy.is_authenticated
    with django_assert_num_queries(1):
        assert lazy.email == user.email  # anything else reads the row, once
    assert isinstance(lazy, get_user_model())


def test_without_redis_the_cache_is_this_process_and_short(api, django_assert_num_queries):
    from elbia.accounts.token_cache import LOCAL_CACHE_SECONDS, local_tokens

    local_tokens.clear()
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        api.get(URL)
        with CaptureQueriesContext(connection) as queries:
            assert api.get(URL).status_code == 200
        # Without Redis the budget is counted in the database; the token is not looked up again.
        assert [query["sql"].split()[0] for query in queries] == ["INSERT"]
        assert "accounts_ratelimitwindow" in queries[0]["sql"]
        token_revoke(api_token=api.issued.api_token, reason=TokenEnd.BY_USER)
        assert api.get(URL).status_code == 401
    assert LOCAL_CACHE_SECONDS <= 1
    local_tokens.clear()
