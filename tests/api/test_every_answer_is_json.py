"""Every answer under /v1 and /oauth/ is JSON, whatever layer produced it; a dependency that does not answer is a
503 ``unavailable`` with Retry-After, on the API and (as a page) on the dashboard. Over real gunicorn:
tests/api/test_server_limits.py; with real outages: tests/test_faults.py."""

import pytest
import redis.exceptions
from django.contrib.sessions.backends.db import SessionStore
from django.db import OperationalError
from django_redis.exceptions import ConnectionInterrupted

from elbia.accounts import oauth

pytestmark = pytest.mark.django_db


def assert_json_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert (error["status"], error["code"]) == (status, code)
    assert error["request_id"] == response["X-Request-ID"]
    return error


class TestUnavailable:
    @pytest.mark.parametrize(
        ("failure", "dependency"),
        [
            (OperationalError("the database did not answer"), "database"),
            (redis.exceptions.TimeoutError("Timeout reading from socket"), "cache"),
            (ConnectionInterrupted(connection=None), "cache"),
        ],
    )
    def test_an_api_request_whose_dependency_fails_is_a_503(self, api, monkeypatch, failure, dependency):
        def fail(*args, **kwargs):
            raise failure

        monkeypatch.setattr("elbia.api.authentication._token_rows", fail)
        response = api.get("/v1/regions")
        error = assert_json_error(response, 503, "unavailable")
        assert f"its {dependency} did not answer" in error["message"]
        assert response["Retry-After"] == "5"

    def test_an_oauth_request_whose_database_fails_is_a_json_503(self, client, monkeypatch):
        def fail(*args, **kwargs):
            raise OperationalError("the database did not answer")

        monkeypatch.setattr(oauth.TokenView, "post", fail)
        response = client.post("/oauth/token/", {"grant_type": "refresh_token", "refresh_token": "x"})
        assert_json_error(response, 503, "unavailable")
        assert response["Retry-After"] == "5"

    def test_a_dashboard_page_whose_database_fails_is_a_503_page(self, client, user, monkeypatch):
        client.force_login(user)

        def fail(*args, **kwargs):
            raise OperationalError("the database did not answer")

        monkeypatch.setattr("functions.views.function_list", fail)
        response = client.get("/functions/")
        assert response.status_code == 503
        assert response["Retry-After"] == "5"
        assert "Temporarily unavailable" in response.content.decode()

    def test_a_failure_inside_a_middleware_is_a_503_too(self, client, user, monkeypatch):
        client.force_login(user)

        def fail(self, *args, **kwargs):
            raise OperationalError("the database did not answer")

        monkeypatch.setattr(SessionStore, "load", fail)  # the session middleware, before any view
        response = client.get("/")
        assert response.status_code == 503
        assert "Temporarily unavailable" in response.content.decode()

    def test_other_errors_stay_500(self, client, user, monkeypatch):
        client.raise_request_exception = False
        client.force_login(user)

        def fail(*args, **kwargs):
            raise KeyError("a bug")

        monkeypatch.setattr("functions.views.function_list", fail)
        assert client.get("/functions/").status_code == 500


class TestHosts:
    @pytest.mark.parametrize("path", ["/v1/regions", "/oauth/token/", "/oauth/revoke_token/"])
    @pytest.mark.parametrize("host", ["evil.example", "testserver:8443"])
    def test_a_disallowed_host_or_port_is_a_json_400(self, client, path, host):
        error = assert_json_error(client.post(path, HTTP_HOST=host), 400, "invalid_request")
        assert "Host header" in error["message"]

    def test_the_dashboard_keeps_django_s_page(self, client):
        response = client.get("/login/", HTTP_HOST="evil.example")
        assert response.status_code == 400
        assert not response["Content-Type"].startswith("application/json")

    @pytest.mark.parametrize("host", ["testserver", "testserver:80", "testserver:443", "localhost:8000", "[::1]:9"])
    def test_allowed_hosts_and_ports_are_served(self, client, host):
        assert client.get("/healthz", HTTP_HOST=host).status_code == 200


class TestOAuthErrors:
    def test_a_method_the_token_endpoint_refuses_is_json(self, client):
        response = client.get("/oauth/token/")
        assert_json_error(response, 405, "method_not_allowed")
        assert "POST" in response["Allow"]

    def test_an_unknown_oauth_path_is_json(self, client):
        assert_json_error(client.get("/oauth/authorize/"), 404, "not_found")

    def test_oauth_s_own_errors_keep_their_shape(self, client):
        response = client.post("/oauth/token/", {"grant_type": "refresh_token", "refresh_token": "elb_rt_nope"})
        assert response.status_code in (400, 401)
        assert isinstance(response.json()["error"], str)  # RFC 6749: {"error": "invalid_client"}
