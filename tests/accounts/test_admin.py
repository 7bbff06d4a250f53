"""Staff change a token's own rate limit in the admin; nothing else about a token is editable there."""

import pytest

from elbia.accounts.models import ApiToken
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(account=None, is_staff=True, is_superuser=True))
    return client


def change(staff_client, token: ApiToken, rate_limit: str):
    return staff_client.post(f"/admin/accounts/apitoken/{token.pk}/change/", {"rate_limit": rate_limit})


def test_staff_set_a_token_rate_limit(staff_client, api):
    token = api.issued.api_token
    response = change(staff_client, token, " 50/minute ")
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.rate_limit == "50/minute"
    assert api.get("/v1/regions")["X-RateLimit-Limit"] == "50"


def test_a_rate_limit_that_does_not_parse_is_refused(staff_client, api):
    token = api.issued.api_token
    response = change(staff_client, token, "lots")
    assert response.status_code == 200
    assert "e.g. 5000/hour" in response.content.decode()
    token.refresh_from_db()
    assert token.rate_limit == ""


def test_emptying_the_rate_limit_restores_the_default(staff_client, make_client, user):
    api = make_client(user, rate_limit="3/minute")
    assert change(staff_client, api.issued.api_token, "").status_code == 302
    assert api.get("/v1/regions")["X-RateLimit-Limit"] == "5000"


def test_tokens_cannot_be_added_in_the_admin(staff_client):
    assert staff_client.get("/admin/accounts/apitoken/add/").status_code == 403
    assert staff_client.get("/admin/accounts/apitoken/").status_code == 200
