"""Accounts, users and API tokens in the admin: renames, rate limits, revocation, deactivation, all audited."""

import pytest
from django.contrib.auth.models import Group
from oauth2_provider.models import Application

from elbia.accounts.models import ApiToken, TokenEnd, User
from elbia.accounts.services import token_revoke
from elbia.audit.models import AuditEvent
from tests.admin_actions import messages_of, run_action, staff_events

pytestmark = pytest.mark.django_db

TOKENS = "accounts/apitoken"


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


def test_a_rate_limit_change_is_audited_with_the_field_name_only(staff_client, staff_user, api):
    token = api.issued.api_token
    change(staff_client, token, "50/minute")
    event = staff_events("apitoken.update").get()
    assert (event.object_id, event.account, event.changed_fields) == (str(token.pk), token.account, ["rate_limit"])
    assert event.actor == staff_user.username


def test_a_token_page_shows_no_secret(staff_client, api):
    token = api.issued.api_token
    page = staff_client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    assert token.name in page
    assert api.issued.access_token not in page
    assert api.issued.refresh_token not in page
    assert str(token.token_family) not in page


class TestRevoke:
    def test_asks_first_then_revokes_and_the_token_stops_working(self, staff_client, api):
        token = api.issued.api_token
        page = run_action(staff_client, TOKENS, "revoke", [token]).content.decode()
        assert "Are you sure?" in page
        assert "cannot be undone" in page
        assert api.get("/v1/regions").status_code == 200
        run_action(staff_client, TOKENS, "revoke", [token], confirmed=True)
        token.refresh_from_db()
        assert token.revoked_at is not None
        assert api.get("/v1/regions").status_code == 401
        assert (token.revoked_reason, token.revoked_by) == (TokenEnd.BY_STAFF, staff_client.user.username)
        event = staff_events("apitoken.revoke").get()
        assert (event.object_id, event.changed_fields) == (str(token.pk), ["revoked_at", "revoked_reason"])
        listed = staff_client.get(f"/admin/{TOKENS}/").content.decode()
        assert f"revoked by {staff_client.user.username}" in listed

    def test_a_revoked_token_is_left_alone(self, staff_client, api):
        token = api.issued.api_token
        token_revoke(api_token=token, reason=TokenEnd.BY_USER)
        response = run_action(staff_client, TOKENS, "revoke", [token], confirmed=True)
        assert any("nothing to do for 1" in message for message in messages_of(response))
        assert not staff_events("apitoken.revoke").exists()

    def test_the_list_filters_by_status(self, staff_client, make_client, user):
        make_client(user, name="desk-laptop")
        token_revoke(api_token=make_client(user, name="old-laptop").issued.api_token, reason=TokenEnd.BY_USER)
        page = staff_client.get(f"/admin/{TOKENS}/", {"status": "revoked"}).content.decode()
        assert "old-laptop" in page
        assert "desk-laptop" not in page


class TestAccounts:
    def test_staff_rename_an_account_and_it_is_audited(self, staff_client, account):
        response = staff_client.post(f"/admin/accounts/account/{account.pk}/change/", {"name": "Acme Rockets"})
        assert response.status_code == 302
        account.refresh_from_db()
        assert account.name == "Acme Rockets"
        event = staff_events("account.update").get()
        assert (event.account, event.object_id, event.changed_fields) == (account, str(account.pk), ["name"])

    def test_a_blank_name_is_refused(self, staff_client, account):
        response = staff_client.post(f"/admin/accounts/account/{account.pk}/change/", {"name": ""})
        assert response.status_code == 200
        assert "This field is required." in response.content.decode()

    def test_accounts_and_users_are_neither_added_nor_deleted_here(self, staff_client, user):
        assert staff_client.get("/admin/accounts/account/add/").status_code == 403
        assert staff_client.get("/admin/accounts/user/add/").status_code == 403
        delete = staff_client.post(f"/admin/accounts/account/{user.account.pk}/delete/", {"post": "yes"})
        assert delete.status_code == 403
        assert staff_client.post(f"/admin/accounts/user/{user.pk}/delete/", {"post": "yes"}).status_code == 403
        assert User.objects.filter(pk=user.pk).exists()


class TestUsers:
    def user_form(self, user, **changes):
        return {
            "username": user.username,
            "email": user.email,
            "first_name": "",
            "last_name": "",
            "is_active": "on",
            "date_joined_0": "2024-01-01",
            "date_joined_1": "00:00:00",
        } | changes

    def test_deactivating_a_user_stops_their_tokens_and_is_audited(self, staff_client, api, user):
        form = self.user_form(user)
        del form["is_active"]
        response = staff_client.post(f"/admin/accounts/user/{user.pk}/change/", form)
        assert response.status_code == 302, response.content.decode()[:2000]
        user.refresh_from_db()
        assert not user.is_active
        assert api.get("/v1/regions").status_code == 401
        event = staff_events("user.update").get()
        assert (event.object_id, event.account, event.changed_fields) == (str(user.pk), user.account, ["is_active"])

    def test_a_password_change_is_audited_without_the_password(self, staff_client, user):
        response = staff_client.post(
            f"/admin/accounts/user/{user.pk}/password/",
            {"password1": "another-long-password", "password2": "another-long-password"},
        )
        assert response.status_code == 302
        user.refresh_from_db()
        assert user.check_password("another-long-password")
        event = staff_events("user.update").get()
        assert event.changed_fields == ["password"]
        assert "another-long-password" not in str(AuditEvent.objects.values().get())

    def test_a_user_page_links_to_their_account(self, staff_client, user):
        page = staff_client.get(f"/admin/accounts/user/{user.pk}/change/").content.decode()
        assert f"/admin/accounts/account/{user.account.pk}/change/" in page


class TestOAuthTables:
    def test_token_tables_are_not_in_the_admin(self, staff_client):
        for model in ("accesstoken", "refreshtoken", "grant", "idtoken"):
            assert staff_client.get(f"/admin/oauth2_provider/{model}/").status_code == 404, model

    def test_applications_are_read_only(self, staff_client, api):
        application = Application.objects.get(client_id="elbia-cli")
        url = f"/admin/oauth2_provider/application/{application.pk}/change/"
        page = staff_client.get(url).content.decode()
        assert "elbia-cli" in page
        assert 'name="_save"' not in page
        assert staff_client.post(url, {"client_type": "confidential"}).status_code == 403


def test_group_changes_are_audited(staff_client):
    group = Group.objects.get(name="support")
    permissions = list(group.permissions.values_list("pk", flat=True))
    response = staff_client.post(
        f"/admin/auth/group/{group.pk}/change/", {"name": "support-desk", "permissions": permissions}
    )
    assert response.status_code == 302
    assert staff_events("group.update").get().changed_fields == ["name"]


@pytest.mark.parametrize(
    ("changelist", "lookup"),
    [
        ("accounts/apitoken", "token_family"),
        ("accounts/apitoken", "token_family__startswith"),
        ("accounts/user", "password__startswith"),
    ],
)
def test_private_fields_cannot_be_probed_through_the_url(staff_client, make_client, user, changelist, lookup):
    token = make_client(user, name="laptop-7f3").issued.api_token
    value = {"token_family": str(token.token_family), "token_family__startswith": str(token.token_family)[:2]}
    response = staff_client.get(f"/admin/{changelist}/", {lookup: value.get(lookup, "pbkdf2")})
    assert response.status_code == 400
    assert token.name not in response.content.decode()


def test_token_family_is_not_searchable(staff_client, make_client, user):
    token = make_client(user, name="laptop-7f3").issued.api_token
    assert token.name in staff_client.get(f"/admin/{TOKENS}/", {"q": "laptop-7f3"}).content.decode()
    page = staff_client.get(f"/admin/{TOKENS}/", {"q": str(token.token_family)}).content.decode()
    assert token.name not in page


def test_the_account_page_shows_its_members_and_invitations(staff_client, user):
    from datetime import timedelta

    from django.utils import timezone

    from elbia.accounts.models import Invitation
    from tests.factories import UserFactory

    UserFactory(account=user.account, role="billing", username="bookkeeper")
    Invitation.objects.create(
        account=user.account, email="next@example.com", role="viewer", expires_at=timezone.now() + timedelta(days=7)
    )
    page = staff_client.get(f"/admin/accounts/account/{user.account_id}/change/").content.decode()
    assert "bookkeeper" in page and "Billing" in page and user.username in page and "Owner" in page
    assert "next@example.com" in page and "pending" in page
    found = staff_client.get("/admin/accounts/account/", {"q": "bookkeeper"}).content.decode()
    assert user.account.name in found  # a member of any role finds the account
