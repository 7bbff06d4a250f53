"""Against the real server: gunicorn with 2 worker processes sharing budgets through Redis, on the test database."""

import json
import time
from urllib.parse import urlencode

import pytest

from resources.models import Resource
from tests.servers import call, fire, gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_concurrent_requests_never_exceed_a_token_budget(tmp_path, issue_token, user):
    token = issue_token(user, scopes=["resources:read"], rate_limit="20/minute").access_token
    with gunicorn(tmp_path / "gunicorn.log") as (port, _):
        results = fire(60, 10, lambda: call(port, "GET", "/v1/regions", token))

    served = [headers for status, headers, _ in results if status == 200]
    refused = [(headers, body) for status, headers, body in results if status == 429]
    assert (len(served), len(refused)) == (20, 40)
    assert sorted(int(h["x-ratelimit-remaining"]) for h in served) == list(range(20))
    for headers, body in refused:
        assert body["error"]["code"] == "rate_limited"
        assert body["error"]["message"] == "Rate limit exceeded"
        assert 1 <= int(headers["retry-after"]) <= 60
        assert headers["x-ratelimit-remaining"] == "0"
    every = [headers for _, headers, _ in results]
    assert {h["x-ratelimit-limit"] for h in every} == {"20"}
    resets = [int(h["x-ratelimit-reset"]) for h in every]
    assert max(resets) - min(resets) <= 1
    assert time.time() < min(resets) <= time.time() + 61


def test_the_api_keeps_serving_when_redis_is_unreachable(tmp_path, issue_token, user):
    token = issue_token(user, scopes=["resources:read"]).access_token
    with gunicorn(tmp_path / "gunicorn.log", REDIS_URL="redis://127.0.0.1:1/0") as (port, log_path):
        results = [call(port, "GET", "/v1/regions", token) for _ in range(6)]
        log = log_path.read_text(errors="replace")

    assert [status for status, _, _ in results] == [200] * 6
    assert all(int(headers["x-ratelimit-limit"]) == 5000 for _, headers, _ in results)
    assert 1 <= log.count("Redis is unreachable") <= 2  # at most once per worker process
    assert "Traceback" not in log


def test_concurrent_identical_posts_create_one_object_across_processes(tmp_path, issue_token, user):
    token = issue_token(user, scopes=["resources:read", "resources:write"]).access_token
    body = {"name": "web-1", "hold": 0.5}
    headers = {"Idempotency-Key": "create-web-1"}
    with gunicorn(tmp_path / "gunicorn.log", DJANGO_SETTINGS_MODULE="tests.api.server_settings") as (port, _):
        results = fire(12, 12, lambda: call(port, "POST", "/v1/probe/resources", token, body, headers))
        replay = call(port, "POST", "/v1/probe/resources", token, body, headers)

    assert {status for status, _, _ in results} <= {201, 409}
    originals = [answer for status, h, answer in results if status == 201 and "idempotent-replayed" not in h]
    assert len(originals) == 1
    assert all(answer == originals[0] for status, _, answer in results if status == 201)
    assert all(answer["error"]["code"] == "idempotency_conflict" for status, _, answer in results if status == 409)
    assert replay[0] == 201 and replay[1]["idempotent-replayed"] == "true" and replay[2] == originals[0]
    assert Resource.objects.count() == 1


def cjk_filter(size: int) -> str:
    """A ``filter`` of ``size`` bytes or a little less, mostly three-byte characters (names in CJK)."""
    names, document = [], ""
    while True:
        candidate = json.dumps({"name": {"$in": [*names, "東京データセンター"]}}, ensure_ascii=False)
        if len(candidate.encode()) > size:
            return document
        names.append("東京データセンター")
        document = candidate


def test_a_filter_at_its_documented_limit_fits_the_request_line(tmp_path, issue_token, user):
    token = issue_token(user, scopes=["resources:read"]).access_token
    document = cjk_filter(2048)
    assert 2000 < len(document.encode()) <= 2048
    path = "/v1/resources?" + urlencode({"filter": document, "limit": "200", "ordering": "-created_at"})
    assert len(path) > 6000  # URL-encoded: three times the bytes
    with gunicorn(tmp_path / "gunicorn.log") as (port, _):
        status, _, body = call(port, "GET", path, token)
        too_long = call(port, "GET", "/v1/resources?filter=" + "x" * 8200, token)
    assert (status, body) == (200, [])
    status, headers, body = too_long
    assert status == 414
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert body["error"]["code"] == "uri_too_long"
    assert body["error"]["request_id"] == headers["x-request-id"]


@pytest.mark.parametrize("path", ["/v1/regions", "/oauth/token/"])
def test_a_disallowed_host_is_json_from_the_real_server(tmp_path, path):
    with gunicorn(tmp_path / "gunicorn.log") as (port, _):
        status, headers, body = call(port, "POST", path, headers={"Host": "evil.example"})
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert body["error"]["code"] == "invalid_request"


def test_a_request_past_the_worker_timeout_is_a_json_503(tmp_path, issue_token, user):
    token = issue_token(user, scopes=["resources:read", "resources:write"]).access_token
    settings_module = {"DJANGO_SETTINGS_MODULE": "tests.api.server_settings"}
    with gunicorn(tmp_path / "gunicorn.log", "--timeout", "2", **settings_module) as (port, log_path):
        status, headers, body = call(port, "POST", "/v1/probe/resources", token, {"name": "slow", "hold": 5})
        assert call(port, "GET", "/healthz")[0] == 200  # a new worker took its place
        log = log_path.read_text(errors="replace")
    assert "WORKER TIMEOUT" in log
    assert status == 503
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert body["error"]["code"] == "unavailable"
    assert int(headers["retry-after"]) >= 1
