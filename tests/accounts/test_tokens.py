"""Token issue, renewal with rotation, refused reuse, revocation and the management commands."""

import json

import pytest
from django.core.management import CommandError, call_command
from oauth2_provider.models import AccessToken, RefreshToken
from rest_framework.test import APIClient

from elbia.accounts.models import ApiToken, User

pytestmark = pytest.mark.django_db


def renew(refresh_token: str, client_id: str = "elbia-cli"):
    return APIClient().post(
        "/oauth/token/",
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id},
        format="multipart",
    )


def get_regions(access_token: str):
    return APIClient().get("/v1/regions", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def test_refresh_token_renews_and_rotates(issue_token, user):
    issued = issue_token(user, scopes=["resources:read"])
    response = renew(issued.refresh_token)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 30 * 24 * 3600
    assert body["access_token"].startswith("elb_at_")
    assert body["refresh_token"].startswith("elb_rt_")
    assert body["refresh_token"] != issued.refresh_token
    assert get_regions(body["access_token"]).status_code == 200
    assert get_regions(issued.access_token).status_code == 401
    # The renewed token is still the same named credential.
    family = RefreshToken.objects.get(access_token__token_checksum=AccessToken.objects.latest("id").token_checksum)
    assert family.token_family == issued.api_token.token_family


def test_reused_refresh_token_is_refused_and_revokes_the_family(issue_token, user):
    issued = issue_token(user, scopes=["resources:read"])
    renewed = renew(issued.refresh_token).json()
    reuse = renew(issued.refresh_token)
    assert reuse.status_code in (400, 401)
    assert reuse.json()["error"] == "invalid_grant"
    # Reuse signals a leak: the whole family is revoked, the renewed token included.
    assert get_regions(renewed["access_token"]).status_code == 401
    assert renew(renewed["refresh_token"]).status_code in (400, 401)


def test_renewal_with_unknown_client_is_refused(issue_token, user):
    issued = issue_token(user, scopes=["resources:read"])
    assert renew(issued.refresh_token, client_id="someone-else").status_code == 401


def test_create_account_and_issue_token_commands(capsys):
    call_command("create_account", username="alice", email="alice@example.com", password="s3cret-pass-word")
    user = User.objects.get(username="alice")
    assert user.account.name == "alice"
    assert user.check_password("s3cret-pass-word")

    capsys.readouterr()
    call_command(
        "issue_token", "alice", scopes="resources:read billing:read", name="ci", rate_limit="100/minute", json=True
    )
    document = json.loads(capsys.readouterr().out)
    assert set(document) == {"access_token", "refresh_token", "expires_at", "scopes", "client_id"}
    assert document["scopes"] == ["resources:read", "billing:read"]
    assert document["client_id"] == "elbia-cli"
    assert document["expires_at"].endswith("Z")
    token = ApiToken.objects.get(user=user)
    assert (token.name, token.rate_limit) == ("ci", "100/minute")
    assert get_regions(document["access_token"]).status_code == 200


def test_staff_account(capsys):
    call_command("create_account", username="ops", email="ops@example.com", password="s3cret-pass-word", staff=True)
    user = User.objects.get(username="ops")
    assert user.is_staff and user.account is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scopes": "resources:read nonsense:write"}, "Unknown scope 'nonsense:write'"),
        ({"scopes": "resources:read", "rate_limit": "lots"}, "rate_limit"),
        ({"scopes": "resources:read", "days": 0}, "days"),
    ],
)
def test_issue_token_refuses_bad_options(user, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("issue_token", user.username, **options)


def test_issue_token_for_unknown_user():
    with pytest.raises(CommandError, match="No user named"):
        call_command("issue_token", "nobody", scopes="resources:read")


def test_seed_demo_prints_a_working_token(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    token = next(word for word in out.split() if word.startswith("elb_at_"))
    assert get_regions(token).status_code == 200
    assert "curl -X POST" in out and "grant_type=refresh_token" in out
    call_command("seed_demo")  # running it again reuses the account
    assert User.objects.filter(username="demo").count() == 1
