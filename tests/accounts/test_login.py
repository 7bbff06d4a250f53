"""Dashboard sign-in, sign-out and sign-up: generic errors, rate limits, cookies, CSRF."""

import re
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.utils import timezone

from elbia.accounts.models import ApiToken, SignInAddress, User
from elbia.accounts.tasks import forget_stale_sign_in_addresses
from elbia.audit.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def sign_in(client, username, password=PASSWORD, ip="203.0.113.7"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_every_dashboard_page_requires_login(client, user):
    for path in ["/", "/resources/", "/functions/", "/settings/", "/settings/tokens/", "/settings/tokens/new/"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == f"/login/?next={path}"
    assert client.post("/settings/tokens/1/revoke/", {"confirmed": "yes"}).status_code == 302


def test_sign_in_goes_to_the_dashboard_and_sets_a_safe_session_cookie(client, user):
    response = sign_in(client, user.username)
    assert response.status_code == 302
    assert response["Location"] == "/"
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    home = client.get("/")
    assert home.status_code == 200
    assert b"Account Settings" in home.content


def test_sign_in_follows_a_local_next_but_not_a_foreign_one(client, user):
    response = client.post("/login/?next=/settings/tokens/", {"username": user.username, "password": PASSWORD})
    assert response["Location"] == "/settings/tokens/"
    client.logout()
    response = client.post("/login/?next=https://evil.example/", {"username": user.username, "password": PASSWORD})
    assert response["Location"] == "/"


@pytest.mark.parametrize("which", ["wrong password", "unknown user", "inactive user"])
def test_wrong_credentials_get_one_generic_message(client, user, which):
    if which == "inactive user":
        user.is_active = False
        user.save()
    username = "nobody-here" if which == "unknown user" else user.username
    password = "not-the-password" if which == "wrong password" else PASSWORD
    response = sign_in(client, username, password)
    assert response.status_code == 200
    assert "Incorrect username or password." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_sign_in_is_limited_per_username(client, user):
    for attempt in range(settings.ELBIA_LOGIN_ATTEMPTS):
        # Each guess from a different address: only the username's counter can stop them.
        assert sign_in(client, user.username, "guess", ip=f"198.51.100.{attempt}").status_code == 200
    refused = sign_in(client, user.username, ip="198.51.100.200")
    assert refused.status_code == 429
    assert refused["Retry-After"] == str(int(settings.ELBIA_LOGIN_WINDOW))
    assert "Too many sign-in attempts" in refused.content.decode()
    assert "_auth_user_id" not in client.session  # even the right password is refused for now
    # Case does not make a new username.
    assert sign_in(client, user.username.upper(), ip="198.51.100.201").status_code == 429


def test_sign_in_is_limited_per_address(client):
    for attempt in range(settings.ELBIA_LOGIN_ATTEMPTS):
        assert sign_in(client, f"someone{attempt}", "guess").status_code == 200
    other = UserFactory()
    assert sign_in(client, other.username).status_code == 429
    # Another address still gets in.
    assert sign_in(client, other.username, ip="192.0.2.1").status_code == 302


def test_successful_sign_ins_do_not_use_up_the_address(client):
    for _ in range(settings.ELBIA_LOGIN_ATTEMPTS + 2):  # e.g. a whole office behind one address
        assert sign_in(Client(), UserFactory().username).status_code == 302
    assert sign_in(Client(), "someone", "guess").status_code == 200


def test_a_successful_sign_in_clears_the_username_counter(user):
    for attempt in range(settings.ELBIA_LOGIN_ATTEMPTS - 1):
        sign_in(Client(), user.username, "guess", ip=f"198.51.100.{attempt}")
    assert sign_in(Client(), user.username, ip="192.0.2.50").status_code == 302
    for attempt in range(settings.ELBIA_LOGIN_ATTEMPTS - 1):
        assert sign_in(Client(), user.username, "guess", ip=f"198.51.100.{attempt}").status_code == 200
    assert sign_in(Client(), user.username, ip="192.0.2.51").status_code == 302


def test_sign_in_form_needs_its_csrf_token(user):
    client = Client(enforce_csrf_checks=True)
    response = sign_in(client, user.username)
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_log_out_needs_a_post_and_ends_the_session(client, user):
    client.force_login(user)
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/", follow=True)
    assert response.redirect_chain[-1][0] == "/login/"
    assert "You have signed out." in response.content.decode()
    assert client.get("/").status_code == 302


def signup_data(**overrides):
    data = {
        "account_name": "Acme Rockets",
        "username": "wile",
        "email": "wile@example.com",
        "password1": "a-long-unusual-password",
        "password2": "a-long-unusual-password",
    }
    return data | overrides


def test_sign_up_creates_an_account_and_signs_in(client):
    response = client.post("/signup/", signup_data())
    assert response.status_code == 302
    assert response["Location"] == "/"
    user = User.objects.get(username="wile")
    assert user.account.name == "Acme Rockets"
    assert user.check_password("a-long-unusual-password")
    assert not user.is_staff
    home = client.get("/")
    assert "Acme Rockets" in home.content.decode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"username": "USER-TAKEN"}, "This username is taken."),
        ({"password2": "something-else-entirely"}, "The two passwords do not match."),
        ({"password1": "password", "password2": "password"}, "This password is too common."),
        ({"email": "not an email"}, "Enter a valid email address."),
        ({"email": "a" * 250 + "@example.com"}, "at most 254 characters"),
        ({"username": "bad name!"}, "Enter a valid username."),
        ({"username": "nul\x00byte"}, "Null characters are not allowed."),
    ],
)
def test_sign_up_refuses_bad_input(client, overrides, message):
    UserFactory(username="user-taken")
    response = client.post("/signup/", signup_data(**overrides))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not User.objects.filter(email="wile@example.com").exists()


def test_sign_up_shows_what_the_service_refuses(client, monkeypatch):
    def refuse(**kwargs):
        raise ValidationError({"username": ["Reserved name."], "name": ["Account name refused."]})

    monkeypatch.setattr("elbia.accounts.views.account_create", refuse)
    response = client.post("/signup/", signup_data())
    assert response.status_code == 200
    page = response.content.decode()
    assert "Reserved name." in page and "Account name refused." in page


def test_sign_up_is_limited_per_address(client, settings):
    settings.ELBIA_SIGNUP_ATTEMPTS = 2
    for number in range(2):
        assert Client().post("/signup/", signup_data(username=f"new{number}")).status_code == 302
    response = Client().post("/signup/", signup_data(username="new3"))
    assert response.status_code == 429
    assert not User.objects.filter(username="new3").exists()


def test_signed_in_users_skip_the_login_and_signup_pages(client, user):
    client.force_login(user)
    assert client.get("/login/")["Location"] == "/"
    assert client.get("/signup/")["Location"] == "/"


def test_staff_without_an_account_is_pointed_to_the_admin(client):
    staff = User.objects.create_user(username="ops", password=PASSWORD, is_staff=True)
    client.force_login(staff)
    response = client.get("/settings/tokens/")
    assert response.status_code == 403
    assert "/admin/" in response.content.decode()


# --- Nobody locks the owner out; the admin has the same limits; failures are audited ---------------------


def test_guesses_from_elsewhere_do_not_lock_the_owner_out_of_their_usual_address(client, user):
    assert sign_in(Client(), user.username, ip="192.0.2.10").status_code == 302  # the owner's usual address
    for attempt in range(settings.ELBIA_LOGIN_ATTEMPTS + 5):  # an attacker, from many addresses
        sign_in(Client(), user.username, "guess", ip=f"198.51.100.{attempt}")
    assert sign_in(Client(), user.username, ip="198.51.100.250").status_code == 429  # a new address: held back
    assert sign_in(Client(), user.username, ip="192.0.2.10").status_code == 302  # the owner's: in


def test_an_address_not_signed_in_from_for_90_days_is_trusted_no_longer_and_forgotten(client, user):
    assert sign_in(Client(), user.username, ip="192.0.2.10").status_code == 302
    SignInAddress.objects.filter(user=user).update(last_seen_at=timezone.now() - timedelta(days=91))
    for attempt in range(settings.ELBIA_LOGIN_ATTEMPTS + 5):
        sign_in(Client(), user.username, "guess", ip=f"198.51.100.{attempt}")
    assert sign_in(Client(), user.username, ip="192.0.2.10").status_code == 429  # held back like a new address
    assert forget_stale_sign_in_addresses.apply().get() == 1
    assert not SignInAddress.objects.filter(user=user).exists()


def test_the_owner_s_address_still_has_its_own_limit(client, user):
    assert sign_in(Client(), user.username, ip="192.0.2.10").status_code == 302
    for _ in range(settings.ELBIA_LOGIN_ATTEMPTS):
        assert sign_in(Client(), user.username, "guess", ip="192.0.2.10").status_code == 200
    assert sign_in(Client(), user.username, ip="192.0.2.10").status_code == 429


def test_failed_sign_ins_are_audited_without_the_password(client, user):
    sign_in(client, user.username, "wrong-password-123")
    sign_in(client, "nobody-here", "another-guess-456")
    events = AuditEvent.objects.filter(action="user.login_failed").order_by("id")
    assert [(event.object_id, event.account) for event in events] == [
        (user.username, user.account),
        ("nobody-here", None),
    ]
    assert {event.ip_address for event in events} == {"203.0.113.7"}
    assert "wrong-password-123" not in str(list(AuditEvent.objects.values()))


class TestAdminSignIn:
    def admin_sign_in(self, client, username, password=PASSWORD, ip="203.0.113.9"):
        data = {"username": username, "password": password, "next": "/admin/"}  # as the admin's form sends it
        return client.post("/admin/login/", data, REMOTE_ADDR=ip)

    def test_is_limited_like_the_dashboard_and_audited(self, client, staff_user):
        for _ in range(settings.ELBIA_LOGIN_ATTEMPTS):
            assert self.admin_sign_in(Client(), staff_user.username, "guess").status_code == 200
        refused = self.admin_sign_in(client, staff_user.username)
        assert refused.status_code == 429
        assert refused["Retry-After"] == str(int(settings.ELBIA_LOGIN_WINDOW))
        assert "Too many sign-in attempts" in refused.content.decode()
        assert "_auth_user_id" not in client.session  # even the right password, for now
        assert AuditEvent.objects.filter(action="user.login_failed").count() == settings.ELBIA_LOGIN_ATTEMPTS

    def test_staff_sign_in(self, client, staff_user):
        response = self.admin_sign_in(client, staff_user.username)
        assert (response.status_code, response["Location"]) == (302, "/admin/")

    def test_a_customer_is_refused_and_it_counts(self, client, user):
        response = self.admin_sign_in(client, user.username)
        assert response.status_code == 200
        assert "staff account" in response.content.decode()
        assert AuditEvent.objects.filter(action="user.login_failed", object_id=user.username).exists()


# --- Sign-up: no more than unavoidable about who exists; addresses confirmed before they get mail ----------


def test_every_sign_up_attempt_counts_so_usernames_cannot_be_probed_freely(client, settings):
    settings.ELBIA_SIGNUP_ATTEMPTS = 3
    UserFactory(username="user-taken")
    for name in ("user-taken", "maybe-1", "maybe-2"):  # invalid forms count too
        assert client.post("/signup/", signup_data(username=name, password2="mismatch")).status_code == 200
    refused = client.post("/signup/", signup_data(username="user-taken"))
    assert refused.status_code == 429
    page = refused.content.decode()
    assert "Too many sign-up attempts" in page
    assert "This username is taken." not in page  # not even checked


def test_sign_up_mails_a_confirmation_link_and_nothing_else(client, mailoutbox):
    client.post("/signup/", signup_data())
    user = User.objects.get(username="wile")
    assert user.email_verified_at is None
    assert [message.to for message in mailoutbox] == [["wile@example.com"]]
    link = re.search(r"http://testserver(/verify-email/\S+/)", mailoutbox[0].body).group(1)
    client.post("/settings/tokens/new/", {"name": "ci", "scopes": ["resources:read"], "form_id": str(uuid.uuid4())})
    assert len(mailoutbox) == 1  # an unconfirmed address is told nothing else
    response = client.get(link, follow=True)
    assert "wile@example.com is confirmed" in response.content.decode()
    user.refresh_from_db()
    assert user.email_verified_at is not None
    client.post("/settings/tokens/new/", {"name": "ci-2", "scopes": ["resources:read"], "form_id": str(uuid.uuid4())})
    assert mailoutbox[-1].subject == "A new Elbia API token was generated"


def test_a_confirmation_link_is_for_one_address_and_cannot_be_forged(client, mailoutbox):
    client.post("/signup/", signup_data())
    link = re.search(r"http://testserver(/verify-email/\S+/)", mailoutbox[0].body).group(1)
    user = User.objects.get(username="wile")
    User.objects.filter(pk=user.pk).update(email="changed@example.com")
    assert "invalid or has expired" in client.get(link, follow=True).content.decode()
    assert (
        "invalid or has expired"
        in client.get(link.replace("/verify-email/", "/verify-email/x"), follow=True).content.decode()
    )
    user.refresh_from_db()
    assert user.email_verified_at is None


def test_the_confirmation_link_can_be_sent_again_a_few_times(client, user, mailoutbox):
    client.force_login(user)
    for _ in range(4):
        client.post("/settings/verify-email/")
    assert len(mailoutbox) == 3
    assert "Send the confirmation link again" in client.get("/settings/").content.decode()


# --- Redis unreachable: the dashboard works, degraded ------------------------------------------------------

DEAD_REDIS = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
    }
}


def test_the_dashboard_works_while_redis_is_unreachable(client, user):
    with override_settings(CACHES=DEAD_REDIS):
        assert sign_in(client, user.username, "guess").status_code == 200
        assert sign_in(client, user.username).status_code == 302
        form_id = str(uuid.uuid4())
        data = {"name": "ci", "scopes": ["resources:read"], "form_id": form_id}
        assert client.post("/settings/tokens/new/", data).status_code == 201
        assert client.post("/settings/tokens/new/", data).status_code == 302  # the same form twice: one token
        assert client.get("/settings/tokens/").status_code == 200
        client.logout()
        for _ in range(settings.ELBIA_LOGIN_ATTEMPTS):  # the limits still hold, in this process
            sign_in(client, user.username, "guess", ip="198.51.100.77")
        assert sign_in(client, user.username, ip="198.51.100.77").status_code == 429
    assert ApiToken.objects.filter(user=user).count() == 1
