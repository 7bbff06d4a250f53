"""Memberships: roles in an account, the last owner, switching accounts, tokens within the role."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from elbia.accounts.models import ApiToken, Membership, TokenEnd
from elbia.accounts.roles import Role
from elbia.accounts.services import (
    LAST_OWNER,
    account_create,
    membership_add,
    membership_remove,
    membership_set_role,
    token_issue,
)
from elbia.errors import Conflict
from resources.models import Resource
from tests.factories import AccountFactory, UserFactory
from tests.resources.factories import ComputeFactory

pytestmark = pytest.mark.django_db

WRITE_BODY = {"region": "us-east-1", "instance_type": "t2.micro", "vpc": "default"}


def test_a_new_account_has_its_user_as_owner():
    user = account_create(username="ada", email="ada@example.com", password="correct-horse-battery")
    assert list(Membership.objects.values_list("user", "account", "role")) == [(user.pk, user.account_id, "owner")]


def test_the_data_migration_made_every_existing_user_an_owner():
    """The migration's function, run on a user of an account without a membership (as before teams)."""
    from importlib import import_module

    from django.apps import apps

    migration = import_module("elbia.accounts.migrations.0006_memberships")
    user = UserFactory(role="")
    staff = UserFactory(account=None, is_staff=True)
    migration.owners_of_existing_accounts(apps, None)
    assert Membership.objects.get(user=user).role == "owner"
    assert not Membership.objects.filter(user=staff).exists()


def test_the_last_owner_cannot_be_demoted_or_removed(user):
    owner = Membership.objects.get(user=user)
    with pytest.raises(Conflict, match=LAST_OWNER):
        membership_set_role(membership=owner, role=Role.DEVELOPER)
    with pytest.raises(Conflict, match=LAST_OWNER):
        membership_remove(membership=owner)
    assert Membership.objects.get(pk=owner.pk).role == "owner"


def test_an_owner_may_step_down_once_another_owner_exists(user):
    second = UserFactory(account=None)
    membership_add(account=user.account, user=second, role=Role.OWNER)
    membership_set_role(membership=Membership.objects.get(user=user), role=Role.VIEWER)
    assert Membership.objects.get(user=user).role == "viewer"
    with pytest.raises(Conflict, match=LAST_OWNER):
        membership_remove(membership=Membership.objects.get(user=second))


def test_a_token_never_holds_a_scope_beyond_its_creators_role(user):
    developer = UserFactory(account=user.account, role=Role.DEVELOPER)
    with pytest.raises(ValidationError) as refused:
        token_issue(user=developer, scopes=["resources:read", "billing:read"])
    assert refused.value.message_dict["scopes"] == [
        "Your role in this account (developer) does not allow the scope 'billing:read'."
    ]
    assert token_issue(user=developer, scopes=["resources:write"]).scopes == ["resources:write"]


def test_issue_token_command_refuses_scopes_beyond_the_role(user):
    viewer = UserFactory(account=user.account, role=Role.VIEWER)
    with pytest.raises(CommandError, match="does not allow the scope 'resources:write'"):
        call_command("issue_token", viewer.username, "--scopes", "resources:read resources:write")
    assert not ApiToken.objects.filter(user=viewer).exists()


def test_a_non_member_gets_no_token(user):
    stranger = UserFactory(account=user.account, role="")
    with pytest.raises(ValidationError):
        token_issue(user=stranger, scopes=["resources:read"])


def test_the_token_form_offers_only_the_roles_scopes(user, client):
    billing = UserFactory(account=user.account, role=Role.BILLING)
    client.force_login(billing)
    page = client.get("/settings/tokens/new/").content.decode()
    assert 'value="billing:read"' in page and 'value="resources:read"' in page
    assert 'value="resources:write"' not in page and 'value="usage:write"' not in page
    sent = client.post("/settings/tokens/new/", {"name": "x", "scopes": ["usage:write"], "form_id": "f" * 32})
    assert sent.status_code == 400
    assert not ApiToken.objects.filter(user=billing).exists()


def test_demotion_narrows_the_members_tokens_at_once(user, make_client):
    """The old token gets 403 on its next request (the token cache included); reads still work."""
    developer = UserFactory(account=user.account, role=Role.DEVELOPER)
    client = make_client(developer, scopes=["resources:read", "resources:write"])
    assert client.post("/v1/resources", WRITE_BODY, format="json").status_code == 201  # cached now
    read_only = make_client(developer, scopes=["resources:write"])
    membership_set_role(membership=Membership.objects.get(user=developer), role=Role.VIEWER)
    response = client.post("/v1/resources", WRITE_BODY, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"
    assert client.get("/v1/resources").status_code == 200
    assert ApiToken.objects.get(pk=client.issued.api_token.pk).scope_list == ["resources:read"]
    ended = ApiToken.objects.get(pk=read_only.issued.api_token.pk)
    assert (ended.status, ended.revoked_reason) == ("revoked", TokenEnd.ROLE_CHANGED)
    assert read_only.get("/v1/resources").status_code == 401
    assert Resource.objects.filter(account=user.account, type="compute").count() == 1


def test_removal_revokes_the_members_tokens_at_once(user, make_client):
    developer = UserFactory(account=user.account, role=Role.DEVELOPER)
    client = make_client(developer, scopes=["resources:read"])
    assert client.get("/v1/resources").status_code == 200  # cached now
    membership_remove(membership=Membership.objects.get(user=developer))
    assert client.get("/v1/resources").status_code == 401
    token = ApiToken.objects.get(pk=client.issued.api_token.pk)
    assert (token.status, token.revoked_reason) == ("revoked", TokenEnd.MEMBER_REMOVED)


# --- Several accounts: the dashboard acts on the one chosen in the header ---------------------------------


@pytest.fixture
def two_accounts(user):
    """``user`` owns their account and is a viewer of another, which has a resource of its own."""
    other = AccountFactory(name="Globex")
    membership_add(account=other, user=user, role=Role.VIEWER)
    mine = ComputeFactory(account=user.account, name="mine-server")
    theirs = ComputeFactory(account=other, name="globex-server")
    return user.account, other, mine, theirs


def test_switching_accounts_shows_only_the_chosen_accounts_data(two_accounts, signed_in):
    _, other, mine, theirs = two_accounts
    page = signed_in.get("/resources/").content.decode()
    assert "mine-server" in page and "globex-server" not in page
    assert 'name="account"' in page and "Globex (viewer)" in page  # the switcher
    assert signed_in.get(f"/resources/{theirs.public_id}/").status_code == 404

    response = signed_in.post("/switch-account/", {"account": other.pk})
    assert response.status_code == 302
    page = signed_in.get("/resources/").content.decode()
    assert "globex-server" in page and "mine-server" not in page
    assert signed_in.get(f"/resources/{mine.public_id}/").status_code == 404
    assert signed_in.get(f"/resources/{theirs.public_id}/").status_code == 200
    assert signed_in.get("/resources/new/").status_code == 403  # a viewer there


def test_switching_to_an_account_one_is_not_a_member_of_is_refused(user, signed_in):
    stranger = AccountFactory(name="Initech")
    ComputeFactory(account=stranger, name="initech-server")
    signed_in.post("/switch-account/", {"account": stranger.pk})
    assert "initech-server" not in signed_in.get("/resources/").content.decode()
    session = signed_in.session
    session["elbia_account"] = stranger.pk  # even a session naming it directly
    session.save()
    assert "initech-server" not in signed_in.get("/resources/").content.decode()


def test_a_removed_member_loses_the_account_on_the_next_page(two_accounts, signed_in, user):
    other = two_accounts[1]
    signed_in.post("/switch-account/", {"account": other.pk})
    membership_remove(membership=Membership.objects.get(user=user, account=other))
    page = signed_in.get("/resources/").content.decode()
    assert "globex-server" not in page and "mine-server" in page


def test_a_user_in_no_account_gets_the_no_account_page(user, signed_in):
    second = UserFactory(account=None)
    membership_add(account=user.account, user=second, role=Role.OWNER)
    membership_remove(membership=Membership.objects.get(user=user))
    assert signed_in.get("/resources/").status_code == 403


def test_the_role_check_adds_no_query(user, make_client, django_assert_num_queries):
    """A member's request: one lookup (token, account and role joined) and its use recorded; then none."""
    developer = UserFactory(account=user.account, role=Role.DEVELOPER)
    client = make_client(developer, scopes=["resources:read"])
    with django_assert_num_queries(2):
        assert client.get("/v1/regions").status_code == 200
    with django_assert_num_queries(0):
        assert client.get("/v1/regions").status_code == 200


def test_issue_token_for_another_account_of_the_user(user, capsys):
    other = AccountFactory(name="Globex")
    membership_add(account=other, user=user, role=Role.BILLING)
    call_command("issue_token", user.username, "--scopes", "billing:read", "--account", str(other.pk))
    assert ApiToken.objects.get(user=user).account_id == other.pk
    with pytest.raises(CommandError, match="does not allow the scope 'resources:write'"):
        call_command("issue_token", user.username, "--scopes", "resources:write", "--account", str(other.pk))
    with pytest.raises(CommandError, match="No account with id 0"):
        call_command("issue_token", user.username, "--scopes", "billing:read", "--account", "0")
