"""Account Settings > Members: owners see the members, change roles and remove members."""

import uuid

import pytest

from elbia.accounts.models import ApiToken, Membership
from elbia.accounts.roles import Role
from elbia.accounts.services import LAST_OWNER, token_issue
from elbia.audit.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def once() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def developer(user):
    member = UserFactory(account=None, username="dev", email="dev@example.com")
    Membership.objects.create(user=member, account=user.account, role=Role.DEVELOPER)
    return member


def test_owners_see_every_member_with_role_and_tokens(user, developer, signed_in):
    token_issue(user=developer, account=user.account, scopes=["resources:read"])
    page = signed_in.get("/settings/members/").content.decode()
    assert "dev@example.com" in page and user.email in page
    row = page[page.index(f'data-member-id="{Membership.objects.get(user=developer).pk}"') :]
    row = row[: row.index("</tr>")]
    assert '<option value="developer" title="Resources, functions and their own API tokens." selected>' in row
    assert '<td data-label="Active tokens">1</td>' in row


def test_changing_a_role_narrows_tokens_and_is_audited(user, developer, signed_in):
    issued = token_issue(user=developer, account=user.account, scopes=["resources:read", "resources:write"])
    membership = Membership.objects.get(user=developer)
    response = signed_in.post(f"/settings/members/{membership.pk}/role/", {"role": "viewer", "form_id": once()})
    assert response.status_code == 302
    assert Membership.objects.get(pk=membership.pk).role == "viewer"
    assert ApiToken.objects.get(pk=issued.api_token.pk).scope_list == ["resources:read"]
    assert "dev is now viewer." in signed_in.get(response.url).content.decode()
    event = AuditEvent.objects.get(action="membership.update")
    assert (event.account_id, event.actor, event.changed_fields) == (user.account_id, user.username, ["role"])
    assert AuditEvent.objects.filter(action="apitoken.narrow", object_id=str(issued.api_token.pk)).exists()


def test_the_last_owner_is_refused_with_a_clear_message(user, signed_in):
    own = Membership.objects.get(user=user)
    response = signed_in.post(f"/settings/members/{own.pk}/role/", {"role": "viewer", "form_id": once()}, follow=True)
    assert LAST_OWNER in response.content.decode()
    assert Membership.objects.get(pk=own.pk).role == "owner"
    page = signed_in.get(f"/settings/members/{own.pk}/remove/").content.decode()
    assert LAST_OWNER in page and "Remove member</button>" not in page
    signed_in.post(f"/settings/members/{own.pk}/remove/", {"confirmed": "yes", "form_id": once()})
    assert Membership.objects.filter(pk=own.pk).exists()


def test_an_unknown_role_is_refused(user, developer, signed_in):
    membership = Membership.objects.get(user=developer)
    response = signed_in.post(
        f"/settings/members/{membership.pk}/role/", {"role": "admin", "form_id": once()}, follow=True
    )
    assert "Unknown role" in response.content.decode()
    assert Membership.objects.get(pk=membership.pk).role == "developer"


def test_removing_a_member_revokes_their_tokens_and_is_audited(user, developer, signed_in, client):
    issued = token_issue(user=developer, account=user.account, scopes=["resources:read"])
    membership = Membership.objects.get(user=developer)
    assert "loses access" in signed_in.get(f"/settings/members/{membership.pk}/remove/").content.decode()
    response = signed_in.post(f"/settings/members/{membership.pk}/remove/", {"confirmed": "yes", "form_id": once()})
    assert response.status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert ApiToken.objects.get(pk=issued.api_token.pk).status == "revoked"
    assert AuditEvent.objects.filter(action="membership.delete", account=user.account).count() == 1
    client.force_login(developer)
    assert client.get("/resources/").status_code == 403  # in no account any more


def test_another_accounts_member_is_a_404(user, signed_in, other_user):
    theirs = Membership.objects.get(user=other_user)
    assert signed_in.get(f"/settings/members/{theirs.pk}/remove/").status_code == 404
    assert (
        signed_in.post(f"/settings/members/{theirs.pk}/role/", {"role": "viewer", "form_id": once()}).status_code == 404
    )
    assert Membership.objects.get(pk=theirs.pk).role == "owner"


@pytest.mark.parametrize("count", [1, 8])
def test_members_page_query_count_does_not_grow(user, signed_in, django_assert_num_queries, count):
    for _ in range(count):
        member = UserFactory(account=None)
        Membership.objects.create(user=member, account=user.account, role=Role.VIEWER)
        token_issue(user=member, account=user.account, scopes=["resources:read"])
    # The session, the user, their memberships (the switcher), the members with token counts, the invitations.
    with django_assert_num_queries(5):
        assert signed_in.get("/settings/members/").status_code == 200
