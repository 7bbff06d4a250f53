"""Token issue, renewal with rotation, refused reuse, every way a token ends, and the management commands."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from oauth2_provider.models import AccessToken, RefreshToken
from rest_framework.test import APIClient

from elbia.accounts.models import Account, ApiToken, Membership, TokenEnd, User
from elbia.accounts.services import user_set_active
from elbia.accounts.tasks import clear_expired_tokens
from elbia.audit.models import AuditEvent
from elbia.config import parse_rate

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


# --- How tokens end: one record and one audit event each ------------------------------------------------


def revoke_at_endpoint(token: str, hint: str = "", ip: str = "127.0.0.1"):
    data = {"token": token, "client_id": "elbia-cli", **({"token_type_hint": hint} if hint else {})}
    return APIClient(REMOTE_ADDR=ip).post("/oauth/revoke_token/", data, format="multipart")


def ended(api_token: ApiToken) -> tuple[str, str, list[str]]:
    """The token's status as the dashboard shows it, and the audit events about it."""
    api_token.refresh_from_db()
    events = list(AuditEvent.objects.filter(object_id=str(api_token.pk)).values_list("action", flat=True))
    return api_token.status, api_token.status_detail, events


def test_a_reused_refresh_token_is_recorded_as_the_reason(issue_token, user):
    issued = issue_token(user, scopes=["resources:read"])
    renew(issued.refresh_token)
    assert renew(issued.refresh_token).json()["error"] == "invalid_grant"
    assert ended(issued.api_token) == ("revoked", "revoked: refresh token reused", ["apitoken.revoke"])
    assert issued.api_token.revoked_reason == TokenEnd.REFRESH_REUSED


@pytest.mark.parametrize("which", ["access", "refresh"])
def test_the_revocation_endpoint_ends_the_whole_token_and_says_so(issue_token, user, which):
    issued = issue_token(user, scopes=["resources:read"])
    presented = issued.access_token if which == "access" else issued.refresh_token
    assert revoke_at_endpoint(presented, hint=f"{which}_token").status_code == 200
    assert get_regions(issued.access_token).status_code == 401
    assert renew(issued.refresh_token).status_code in (400, 401)
    status, detail, events = ended(issued.api_token)
    assert (status, detail) == ("revoked", "revoked: revoked through /oauth/revoke_token/")
    assert events == ["apitoken.revoke"]  # the later refusal of its refresh token does not end it twice


def test_the_revocation_endpoint_is_budgeted_like_the_token_endpoint(settings, issue_token, user):
    settings.ELBIA_AUTH_RATE_LIMIT = parse_rate("2/minute")
    answers = [revoke_at_endpoint("elb_at_unknown", ip="198.51.100.9") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]  # RFC 7009: unknown tokens are a 200
    assert answers[2].json()["error"]["code"] == "rate_limited"
    assert int(answers[2]["Retry-After"]) >= 1
    assert revoke_at_endpoint("elb_at_unknown", ip="198.51.100.10").status_code == 200


def test_a_deactivated_user_s_refresh_token_is_refused(issue_token, user):
    issued = issue_token(user, scopes=["resources:read"])
    User.objects.filter(pk=user.pk).update(is_active=False)  # however it happened
    response = renew(issued.refresh_token)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert not AccessToken.objects.filter(user=user).exclude(pk=AccessToken.objects.get().pk).exists()


def test_deactivating_a_user_revokes_their_tokens(issue_token, user):
    first, second = (issue_token(user, scopes=["resources:read"]) for _ in range(2))
    user_set_active(user=user, active=False)
    for issued in (first, second):
        assert ended(issued.api_token) == ("revoked", "revoked: its user was deactivated", ["apitoken.revoke"])
        assert renew(issued.refresh_token).status_code in (400, 401)
    user_set_active(user=user, active=True)
    assert get_regions(first.access_token).status_code == 401  # reactivation brings no token back


def test_a_refresh_that_narrows_the_scopes_shows_the_current_ones(issue_token, user):
    issued = issue_token(user, scopes=["resources:read", "functions:read"])
    response = APIClient().post(
        "/oauth/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": issued.refresh_token,
            "client_id": "elbia-cli",
            "scope": "functions:read",
        },
        format="multipart",
    )
    assert response.status_code == 200, response.content
    issued.api_token.refresh_from_db()
    assert issued.api_token.scope_list == ["functions:read"]


def test_the_clean_up_records_tokens_whose_refresh_token_expired(issue_token, user, settings):
    live, lapsed = issue_token(user, scopes=["resources:read"]), issue_token(user, scopes=["resources:read"])
    refresh_lifetime = timedelta(seconds=settings.OAUTH2_PROVIDER["REFRESH_TOKEN_EXPIRE_SECONDS"])
    ApiToken.objects.filter(pk=lapsed.api_token.pk).update(expires_at=timezone.now() - refresh_lifetime)
    ApiToken.objects.filter(pk=live.api_token.pk).update(expires_at=timezone.now() - timedelta(days=1))
    clear_expired_tokens.apply()
    assert ended(lapsed.api_token) == ("expired", "expired", ["apitoken.expire"])
    assert ended(live.api_token)[1:] == ("expired", [])  # the access token expired, its refresh token renews it
    clear_expired_tokens.apply()
    assert ended(lapsed.api_token)[2] == ["apitoken.expire"]  # once


def test_the_token_list_says_why_each_token_ended(client, issue_token, user, staff_user):
    tokens = {name: issue_token(user, scopes=["resources:read"], name=name) for name in ("mine", "reused", "pulled")}
    client.force_login(user)
    client.post(f"/settings/tokens/{tokens['mine'].api_token.pk}/revoke/", {"confirmed": "yes"})
    renew(tokens["reused"].refresh_token)
    renew(tokens["reused"].refresh_token)
    revoke_at_endpoint(tokens["pulled"].access_token)
    page = client.get("/settings/tokens/").content.decode()
    assert f"Revoked by {user.username}" in page
    assert "Revoked: refresh token reused" in page
    assert "Revoked: revoked through /oauth/revoke_token/" in page
    assert ">Revoke</button>" not in page  # nothing left to revoke


@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_with_one_token_have_one_winner(issue_token):
    """Each request in its own thread and database connection: they meet on the refresh token's row lock."""
    user = User.objects.create_user(username="racer", password="x")
    user.account = Account.objects.create(name="racer")
    user.save()
    Membership.objects.create(user=user, account=user.account, role="owner")
    issued = issue_token(user, scopes=["resources:read"])
    start = threading.Barrier(6, timeout=30)

    def refresh():
        start.wait()
        try:
            response = renew(issued.refresh_token)
            return response.status_code, response.json()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(lambda _: refresh(), range(6)))
    statuses = sorted(status for status, _ in answers)
    assert statuses == [200, 400, 400, 400, 400, 400], answers
    assert {body["error"] for status, body in answers if status == 400} == {"invalid_grant"}
    # The losers presented a token already used: a reuse, which ends the credential (RFC 9700 4.14.2).
    assert ended(issued.api_token)[1] == "revoked: refresh token reused"
