"""Every way a request can fail to authenticate gets the same 401; scopes give 403."""

from datetime import timedelta

import pytest
from django.utils import timezone
from oauth2_provider.models import AccessToken
from rest_framework.test import APIClient

from elbia.accounts.models import TokenEnd
from elbia.accounts.services import token_revoke

pytestmark = pytest.mark.django_db

URL = "/v1/regions"


def assert_unauthorized(response, *, invalid_token: bool):
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json; charset=utf-8"
    error = response.json()["error"]
    assert error["code"] == "unauthorized"
    assert error["message"] == "Invalid or missing API token"
    assert error["request_id"] == response["X-Request-ID"]
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is invalid_token


def client_with(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


def test_no_header(anonymous_api):
    assert_unauthorized(anonymous_api.get(URL), invalid_token=False)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Token abc", "Bearer", "Bearer  ", "Bearer a b", "elb_at_x"])
def test_malformed_or_wrong_scheme(header):
    assert_unauthorized(client_with(header).get(URL), invalid_token=True)


def test_unknown_token():
    assert_unauthorized(client_with("Bearer elb_at_does-not-exist").get(URL), invalid_token=True)


def test_non_ascii_token():
    client = APIClient()
    response = client.get(URL, HTTP_AUTHORIZATION="Bearer élb".encode().decode("latin-1"))
    assert_unauthorized(response, invalid_token=True)


def test_valid_token(api):
    response = api.get(URL)
    assert response.status_code == 200
    assert {"code": "us-east-1", "name": "US East (N. Virginia)"} in response.json()


def test_revoked_token(api):
    assert api.get(URL).status_code == 200
    token_revoke(api_token=api.issued.api_token, reason=TokenEnd.BY_USER)
    assert_unauthorized(api.get(URL), invalid_token=True)


def test_expired_token(api):
    AccessToken.objects.update(expires=timezone.now() - timedelta(seconds=1))
    assert_unauthorized(api.get(URL), invalid_token=True)


def test_token_in_query_string_is_refused(api):
    token = api.issued.access_token
    assert_unauthorized(APIClient().get(f"{URL}?access_token={token}"), invalid_token=True)
    assert_unauthorized(api.get(f"{URL}?access_token={token}"), invalid_token=True)


def test_inactive_user(api, user):
    user.is_active = False
    user.save()
    assert_unauthorized(api.get(URL), invalid_token=True)


def test_tokens_are_stored_only_as_hashes(api):
    stored = AccessToken.objects.get()
    assert stored.token == ""
    assert api.issued.access_token not in stored.token_checksum
    assert api.issued.access_token.startswith("elb_")


def test_missing_scope_is_403(make_client, user):
    client = make_client(user, scopes=["billing:read"])
    response = client.get(URL)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "insufficient_scope"
    assert "resources:read" in error["message"]
    assert 'error="insufficient_scope"' in response["WWW-Authenticate"]


def test_last_used_is_recorded(api):
    assert api.issued.api_token.last_used_at is None
    api.get(URL)
    api.issued.api_token.refresh_from_db()
    assert api.issued.api_token.last_used_at is not None
