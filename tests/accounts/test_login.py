"""Dashboard sign-in, sign-out and sign-up: generic errors, rate limits, cookies, CSRF."""

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client

from elbia.accounts.models import User
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
