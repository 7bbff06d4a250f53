"""Account Settings > API Tokens: list, generate (secrets shown once), revoke; one user never reaches another's."""

import re
import uuid

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from elbia.accounts.models import ApiToken
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def generate(client, name="CI deploys", scopes=("resources:read",), form_id=None):
    return client.post(
        "/settings/tokens/new/",
        {"name": name, "scopes": list(scopes), "form_id": str(form_id or uuid.uuid4())},
    )


def shown_secret(response, element_id: str) -> str:
    match = re.search(rf'id="{element_id}" value="([^"]+)"', response.content.decode())
    assert match, f"no {element_id} on the page"
    return match.group(1)


def regions(access_token: str):
    return APIClient().get("/v1/regions", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def test_generate_form_offers_one_checkbox_per_scope_with_its_explanation(signed_in):
    page = signed_in.get("/settings/tokens/new/").content.decode()
    for scope, explanation in settings.SCOPES.items():
        assert f'name="scopes" value="{scope}"' in page
        assert explanation in page
    assert f"{settings.ELBIA_TOKEN_DAYS} days" in page


def test_generated_token_is_shown_once_and_works_at_once(signed_in, user):
    response = generate(signed_in, scopes=["resources:read", "functions:read"])
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]  # no copy of the secrets in any cache
    access, refresh = shown_secret(response, "access-token"), shown_secret(response, "refresh-token")
    assert access.startswith("elb_at_") and refresh.startswith("elb_rt_")
    page = response.content.decode()
    assert f'curl -H "Authorization: Bearer {access}" http://testserver/v1/resources' in page
    assert (
        "curl -X POST http://testserver/oauth/token/ -d grant_type=refresh_token "
        f"-d refresh_token={refresh} -d client_id=elbia-cli"
    ) in page

    assert regions(access).status_code == 200
    token = ApiToken.objects.get(user=user)
    assert (token.name, token.scope_list, token.status) == (
        "CI deploys",
        ["resources:read", "functions:read"],
        "active",
    )

    # Never again: not in the list, not in the session.
    listing = signed_in.get("/settings/tokens/").content.decode()
    assert "CI deploys" in listing and "resources:read" in listing
    assert access not in listing and refresh not in listing
    assert access not in str(dict(signed_in.session)) and refresh not in str(dict(signed_in.session))


def test_the_refresh_token_shown_renews_the_token(signed_in):
    response = generate(signed_in)
    renewed = APIClient().post(
        "/oauth/token/",
        {
            "grant_type": "refresh_token",
            "refresh_token": shown_secret(response, "refresh-token"),
            "client_id": "elbia-cli",
        },
        format="multipart",
    )
    assert renewed.status_code == 200
    assert regions(renewed.json()["access_token"]).status_code == 200


def test_scopes_are_exactly_those_ticked(signed_in):
    response = generate(signed_in, scopes=["functions:read"])
    access = shown_secret(response, "access-token")
    refused = regions(access)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert "/v1/functions" in response.content.decode()  # the "Try it" command uses what the token may read


def test_submitting_the_same_form_twice_issues_one_token(signed_in, user):
    form_id = uuid.uuid4()
    assert generate(signed_in, form_id=form_id).status_code == 201
    again = generate(signed_in, form_id=form_id)
    assert again.status_code == 302
    assert again["Location"] == "/settings/tokens/"
    assert ApiToken.objects.filter(user=user).count() == 1
    assert "shown only once" in signed_in.get("/settings/tokens/").content.decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "scopes": []}, "Choose at least one scope."),
        ({"name": "x", "scopes": ["admin:everything"]}, "Select a valid choice."),
        ({"name": "", "scopes": ["resources:read"]}, "This field is required."),
        ({"name": "n" * 101, "scopes": ["resources:read"]}, "at most 100 characters"),
        ({"name": "nul\x00", "scopes": ["resources:read"]}, "Null characters are not allowed."),
        ({"name": "x", "scopes": ["resources:read"], "form_id": "not-a-uuid"}, "This form has expired."),
    ],
)
def test_generate_refuses_bad_input(signed_in, user, data, message):
    response = signed_in.post("/settings/tokens/new/", {"form_id": str(uuid.uuid4())} | data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ApiToken.objects.filter(user=user).exists()
    assert "elb_at_" not in response.content.decode()


def test_bad_input_keeps_the_ticked_scopes(signed_in):
    response = signed_in.post(
        "/settings/tokens/new/", {"name": "", "scopes": ["billing:read"], "form_id": str(uuid.uuid4())}
    )
    assert 'value="billing:read" checked' in response.content.decode()
    assert 'value="resources:read" checked' not in response.content.decode()


def test_revoke_asks_for_confirmation_then_the_api_refuses_the_token(signed_in, user):
    access = shown_secret(generate(signed_in), "access-token")
    token = ApiToken.objects.get(user=user)
    url = f"/settings/tokens/{token.pk}/revoke/"

    # Without confirmation (no JavaScript): a confirmation page, nothing revoked.
    unconfirmed = signed_in.post(url, {"confirmed": ""})
    assert unconfirmed.status_code == 200
    assert "Revoke the token" in unconfirmed.content.decode()
    assert regions(access).status_code == 200

    confirmed = signed_in.post(url, {"confirmed": "yes"})
    assert confirmed.status_code == 302
    refused = regions(access)
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "Invalid or missing API token"
    token.refresh_from_db()
    assert token.status == "revoked"
    listing = signed_in.get("/settings/tokens/").content.decode()
    assert "is revoked" in listing and "Revoked" in listing

    assert signed_in.post(url, {"confirmed": "yes"}).status_code == 302  # twice is harmless


def test_another_users_token_can_be_neither_seen_nor_revoked(client, issue_token):
    alice, bob = UserFactory(), UserFactory()
    alice_token = issue_token(alice, scopes=["resources:read"], name="alice-secret-pipeline")
    client.force_login(bob)

    assert "alice-secret-pipeline" not in client.get("/settings/tokens/").content.decode()
    url = f"/settings/tokens/{alice_token.api_token.pk}/revoke/"
    assert client.post(url, {"confirmed": "yes"}).status_code == 404
    assert client.get(url).status_code == 404
    alice_token.api_token.refresh_from_db()
    assert alice_token.api_token.revoked_at is None
    assert regions(alice_token.access_token).status_code == 200


def test_a_colleagues_token_in_the_same_account_stays_theirs(client, user, issue_token):
    """A member who is not an owner sees and revokes only their own tokens (owners see all: test_account_tokens)."""
    colleague = UserFactory(account=user.account, role="developer")
    theirs = issue_token(user, scopes=["resources:read"], name="owner-token")
    client.force_login(colleague)
    assert "owner-token" not in client.get("/settings/tokens/").content.decode()
    assert client.post(f"/settings/tokens/{theirs.api_token.pk}/revoke/", {"confirmed": "yes"}).status_code == 404


def test_revoke_needs_the_csrf_token(user, issue_token):
    from django.test import Client

    issued = issue_token(user, scopes=["resources:read"])
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(f"/settings/tokens/{issued.api_token.pk}/revoke/", {"confirmed": "yes"})
    assert response.status_code == 403
    assert regions(issued.access_token).status_code == 200


@pytest.mark.parametrize("count", [1, 30])
def test_token_list_query_count_does_not_grow(signed_in, user, issue_token, django_assert_num_queries, count):
    for number in range(count):
        issue_token(user, scopes=["resources:read"], name=f"token {number}")
    # session, user, account, token count for the paginator, token page
    with django_assert_num_queries(5):
        response = signed_in.get("/settings/tokens/")
    assert response.content.decode().count("data-token-id=") == count


def test_token_list_pages_by_fifty(signed_in, user, issue_token):
    for number in range(51):
        issue_token(user, scopes=["resources:read"], name=f"token {number}")
    first = signed_in.get("/settings/tokens/").content.decode()
    assert first.count("data-token-id=") == 50
    assert "1–50 of 51" in first
    second = signed_in.get("/settings/tokens/?page=2").content.decode()
    assert second.count("data-token-id=") == 1
    assert "token 0" in second  # oldest last
    assert signed_in.get("/settings/tokens/?page=abc").status_code == 200


def test_a_form_with_a_broken_id_can_be_sent_again(signed_in, user):
    response = signed_in.post("/settings/tokens/new/", {"name": "x", "scopes": ["resources:read"], "form_id": "old"})
    form_id = re.search(r'name="form_id" value="([^"]+)"', response.content.decode()).group(1)
    assert generate(signed_in, name="x", form_id=uuid.UUID(form_id)).status_code == 201
    assert ApiToken.objects.filter(user=user).count() == 1
