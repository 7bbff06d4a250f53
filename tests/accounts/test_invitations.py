"""Invitations: an owner invites by email with a role; the signed link works once, for 7 days."""

import re
import time
import uuid
from datetime import timedelta
from unittest import mock

import pytest
from django.core import mail
from django.core.signing import TimestampSigner
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from elbia.accounts.models import Invitation, Membership, User
from elbia.accounts.services import (
    INVITATION_CANCELLED,
    INVITATION_EXPIRED,
    INVITATION_INVALID,
    INVITATION_USED,
    invitation_token,
)
from elbia.audit.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser():
    """A second browser (``signed_in`` is the owner's)."""
    return Client()


PASSWORD = "a-long-enough-password-42"


def invite(browser, email="new@example.com", role="developer"):
    return browser.post("/settings/members/invite/", {"email": email, "role": role, "form_id": str(uuid.uuid4())})


def mailed_link() -> str:
    return re.search(r"http://testserver(/invitations/\S+/)", mail.outbox[-1].body).group(1)


def test_an_owner_invites_and_the_mail_carries_the_link(user, signed_in):
    response = invite(signed_in)
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert (invitation.account_id, invitation.email, invitation.role, invitation.invited_by_id) == (
        user.account_id,
        "new@example.com",
        "developer",
        user.pk,
    )
    assert invitation.expires_at - invitation.created_at == timedelta(days=7)
    assert mail.outbox[-1].to == ["new@example.com"]
    assert f"invited you to {user.account.name}" in mail.outbox[-1].subject
    page = signed_in.get("/settings/members/").content.decode()
    assert "new@example.com" in page and f"/settings/members/invitations/{invitation.pk}/cancel/" in page
    assert AuditEvent.objects.filter(action="invitation.create", account=user.account).count() == 1


def test_a_newcomer_signs_up_through_the_link_and_joins(user, signed_in, browser):
    invite(signed_in, role="billing")
    link = mailed_link()
    page = browser.get(link).content.decode()
    assert f"Join {user.account.name}" in page and "billing" in page
    response = browser.post(link, {"username": "newbie", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    newbie = User.objects.get(username="newbie")
    assert newbie.email == "new@example.com" and newbie.email_verified_at is not None
    assert Membership.objects.get(user=newbie).role == "billing"
    assert browser.get("/billing/invoices/").status_code == 200  # signed in, in the account, as billing
    assert browser.get("/resources/new/").status_code == 403
    assert set(AuditEvent.objects.values_list("action", flat=True)) >= {"invitation.accept", "membership.create"}


def test_a_signed_in_user_joins_with_one_click_and_lands_in_that_account(user, signed_in, browser):
    invite(signed_in, email="someone@example.com", role="viewer")
    link = mailed_link()
    someone = UserFactory(email="someone@example.com")
    browser.force_login(someone)
    assert browser.post(link).status_code == 302
    assert Membership.objects.get(user=someone, account=user.account).role == "viewer"
    assert user.account.name in browser.get("/").content.decode()
    assert browser.get("/resources/new/").status_code == 403  # acting on the new account, as a viewer


def test_a_link_works_once(user, signed_in, browser):
    invite(signed_in)
    link = mailed_link()
    browser.post(link, {"username": "first", "password1": PASSWORD, "password2": PASSWORD})
    other = UserFactory()
    browser.force_login(other)
    response = browser.post(link)
    assert response.status_code == 410
    assert escape(INVITATION_USED) in response.content.decode()
    assert not Membership.objects.filter(user=other, account=user.account).exists()


def test_an_expired_link_is_refused(user, signed_in, browser):
    """Both ways an invitation expires: its row's 7 days, and its signature's age."""
    invite(signed_in)
    link = mailed_link()
    invitation = Invitation.objects.get()
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 7 * 86400 - 60):
        old_link = f"/invitations/{invitation_token(invitation)}/"
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    for url in (link, old_link):
        response = browser.post(url, {"username": "late", "password1": PASSWORD, "password2": PASSWORD})
        assert response.status_code == 410
        assert escape(INVITATION_EXPIRED) in response.content.decode()
    assert not User.objects.filter(username="late").exists()
    assert "data-invitation-id" not in signed_in.get("/settings/members/").content.decode()  # no longer pending


def test_a_tampered_link_is_refused(user, signed_in, browser):
    invite(signed_in)
    invitation = Invitation.objects.get()
    forged = TimestampSigner(salt="elbia.accounts.invitation").sign_object({"i": invitation.pk, "e": "x@example.com"})
    for link in (mailed_link()[:-3] + "xx/", f"/invitations/{forged}/", "/invitations/nothing/"):
        response = browser.post(link, {"username": "intruder", "password1": PASSWORD, "password2": PASSWORD})
        assert response.status_code == 410
        assert escape(INVITATION_INVALID) in response.content.decode()
    assert not User.objects.filter(username="intruder").exists()


def test_a_cancelled_invitation_stops_working(user, signed_in, browser):
    invite(signed_in)
    link = mailed_link()
    invitation = Invitation.objects.get()
    cancel = signed_in.post(f"/settings/members/invitations/{invitation.pk}/cancel/", {"form_id": str(uuid.uuid4())})
    assert cancel.status_code == 302
    assert "data-invitation-id" not in signed_in.get("/settings/members/").content.decode()
    response = browser.get(link)
    assert response.status_code == 410 and escape(INVITATION_CANCELLED) in response.content.decode()


def test_inviting_again_cancels_the_earlier_link(user, signed_in, browser):
    invite(signed_in)
    first = mailed_link()
    invite(signed_in, role="viewer")
    assert browser.get(first).status_code == 410
    assert browser.get(mailed_link()).status_code == 200


def test_inviting_a_member_is_refused(user, signed_in):
    response = invite(signed_in, email=user.email)
    assert response.status_code == 400
    assert "is already a member" in response.content.decode()
    assert not Invitation.objects.exists() and not mail.outbox


def test_only_owners_invite(user, browser):
    developer = UserFactory(account=user.account, role="developer")
    browser.force_login(developer)
    assert invite(browser).status_code == 403
    assert not Invitation.objects.exists()


def test_another_accounts_invitation_cannot_be_cancelled(user, signed_in, other_user, browser):
    browser.force_login(other_user)
    invite(browser)
    theirs = Invitation.objects.get()
    response = signed_in.post(f"/settings/members/invitations/{theirs.pk}/cancel/", {"form_id": str(uuid.uuid4())})
    assert response.status_code == 404
    assert Invitation.objects.get().status == "pending"
