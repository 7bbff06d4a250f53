"""Every token of the account, for its owners: who made it, its scopes, when and from where it was last used."""

import pytest

from elbia.accounts.models import ApiToken, TokenEnd
from elbia.accounts.roles import Role
from elbia.audit.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def developer(user):
    return UserFactory(account=user.account, role=Role.DEVELOPER, username="dev")


def test_owners_see_every_token_of_the_account(user, developer, make_client, signed_in):
    client = make_client(developer, scopes=["functions:read"], name="dev laptop")
    client.get("/v1/functions", REMOTE_ADDR="203.0.113.9")
    make_client(user, scopes=["billing:read"], name="owner script")
    page = signed_in.get("/settings/tokens/").content.decode()
    row = page[page.index("dev laptop") :]
    row = row[: row.index("</tr>")]
    assert '<td data-label="Created by">dev</td>' in row
    assert "functions:read" in row and "203.0.113.9" in row
    assert "owner script" in page


def test_members_see_only_their_own_tokens(user, developer, make_client, client):
    make_client(user, scopes=["billing:read"], name="owner script")
    make_client(developer, scopes=["functions:read"], name="dev laptop")
    client.force_login(developer)
    page = client.get("/settings/tokens/").content.decode()
    assert "dev laptop" in page and "owner script" not in page and "Created by" not in page
    owners = ApiToken.objects.get(name="owner script")
    assert client.post(f"/settings/tokens/{owners.pk}/revoke/", {"confirmed": "yes"}).status_code == 404
    assert ApiToken.objects.get(pk=owners.pk).status == "active"


def test_an_owner_revokes_a_members_token_at_once(user, developer, make_client, signed_in):
    client = make_client(developer, scopes=["functions:read"], name="dev laptop")
    assert client.get("/v1/functions").status_code == 200  # cached now
    token = client.issued.api_token
    response = signed_in.post(f"/settings/tokens/{token.pk}/revoke/", {"confirmed": "yes"})
    assert response.status_code == 302
    assert client.get("/v1/functions").status_code == 401
    token.refresh_from_db()
    assert (token.revoked_reason, token.revoked_by, token.status_detail) == (
        TokenEnd.BY_OWNER,
        user.username,
        f"revoked by {user.username}",
    )
    event = AuditEvent.objects.get(action="apitoken.revoke")
    assert (event.account_id, event.actor) == (user.account_id, user.username)


@pytest.mark.parametrize("count", [1, 6])
def test_the_owners_token_list_query_count_does_not_grow(
    user, developer, issue_token, signed_in, django_assert_num_queries, count
):
    for n in range(count):
        issue_token(developer, ["resources:read"], name=f"dev {n}")
        issue_token(user, ["resources:read"], name=f"own {n}")
    with django_assert_num_queries(5):
        assert signed_in.get("/settings/tokens/").status_code == 200
