"""The seed's steps, literally: log in, Account Settings > API Tokens, Generate New Token, copy, use, revoke."""

import re

import pytest
from playwright.sync_api import expect

from elbia.accounts.models import ApiToken
from tests.browser.conftest import log_in
from tests.factories import FunctionFactory, ResourceFactory, UserFactory

pytestmark = pytest.mark.browser


def generate_token(page, name: str, scopes: list[str]) -> tuple[str, str]:
    """From anywhere in the dashboard: Account Settings > API Tokens > Generate New Token; the secrets shown."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Account Settings").click()
    page.get_by_role("navigation", name="Account Settings").get_by_role("link", name="API Tokens").click()
    expect(page.get_by_role("heading", name="API Tokens", exact=True)).to_be_visible()
    page.get_by_role("link", name="Generate New Token").first.click()
    page.get_by_label("Name", exact=True).fill(name)
    for scope in scopes:
        page.get_by_label(scope).check()
    page.get_by_role("button", name="Generate token").click()
    expect(page.get_by_role("heading", name="Token generated")).to_be_visible()
    return page.locator("#access-token").input_value(), page.locator("#refresh-token").input_value()


def test_generate_copy_use_and_revoke_a_token(page, user, call_api, artifacts):
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    log_in(page, user.username)
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    access, refresh = generate_token(page, "CI deploys", ["resources:read", "functions:read"])
    assert access.startswith("elb_at_") and refresh.startswith("elb_rt_")
    expect(page.get_by_text("shown only this once")).to_be_visible()
    expect(page.locator("#curl-try")).to_have_text(re.compile(rf'Authorization: Bearer {access}" http://.+/v1/'))
    expect(page.locator("#curl-renew")).to_contain_text(
        f"/oauth/token/ -d grant_type=refresh_token -d refresh_token={refresh} -d client_id=elbia-cli"
    )
    copy = page.locator('[data-copy="access-token"]')
    copy.click()
    expect(copy).to_have_text("Copied!")
    assert page.evaluate("navigator.clipboard.readText()") == access
    page.screenshot(path=artifacts / "api-token-generated.png", full_page=True)

    # The token works at once, with the scopes ticked.
    status, body = call_api("/v1/regions", access)
    assert status == 200 and {"code": "eu-west-1", "name": "Europe (Ireland)"} in body

    # Listed without its secret, with its scopes, and now a last use.
    page.get_by_role("link", name="Done").click()
    row = page.locator("#token-table tbody tr", has_text="CI deploys")
    expect(row).to_contain_text("resources:read")
    expect(row).to_contain_text("functions:read")
    expect(row).to_contain_text("Active")
    expect(row.locator('[data-label="Last used"]')).not_to_contain_text("Never")
    assert access not in page.content() and refresh not in page.content()
    page.screenshot(path=artifacts / "api-tokens.png", full_page=True)

    # Revoke asks first; cancelling changes nothing.
    row.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Revoke the token “CI deploys”?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert call_api("/v1/regions", access)[0] == 200

    row.get_by_role("button", name="Revoke").click()
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_role("status")).to_contain_text("“CI deploys” is revoked")
    expect(row).to_contain_text("Revoked")
    expect(row.get_by_role("button", name="Revoke")).to_have_count(0)
    status, body = call_api("/v1/regions", access)
    assert status == 401 and body["error"]["message"] == "Invalid or missing API token"

    assert page.console_errors == []  # no Content-Security-Policy violation, no script error


def test_a_token_without_the_scope_is_refused_with_403(page, user, call_api):
    log_in(page, user.username)
    access, _ = generate_token(page, "functions only", ["functions:read"])
    status, body = call_api("/v1/regions", access)
    assert status == 403
    assert body["error"]["code"] == "insufficient_scope"
    assert "resources:read" in body["error"]["message"]


def test_wrong_password_is_refused(page, user):
    log_in(page, user.username, "not-my-password")
    expect(page.get_by_role("alert")).to_have_text("Incorrect username or password.")
    expect(page).to_have_url(re.compile(r"/login/$"))
    page.goto("/settings/tokens/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/settings/tokens/$"))


def test_another_users_tokens_are_never_visible(new_page, issue_token, live_server):
    alice, bob = UserFactory(), UserFactory()
    issue_token(alice, scopes=["resources:read"], name="alice-release-pipeline")
    alice_token = ApiToken.objects.get(user=alice)

    page = new_page()
    log_in(page, bob.username)
    generate_token(page, "bob-laptop", ["billing:read"])
    page.get_by_role("link", name="Done").click()
    table = page.locator("#token-table")
    expect(table).to_contain_text("bob-laptop")
    expect(table).not_to_contain_text("alice-release-pipeline")

    response = page.goto(f"/settings/tokens/{alice_token.pk}/revoke/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    alice_token.refresh_from_db()
    assert alice_token.revoked_at is None


def test_sign_up_then_log_out(page):
    page.goto("/login/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Company or project name").fill("Acme Rockets")
    page.get_by_label("Username").fill("wile")
    page.get_by_label("Email").fill("wile@example.com")
    page.get_by_label("Password", exact=True).fill("a-long-unusual-password")
    page.get_by_label("Confirm password").fill("a-long-unusual-password")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status")).to_contain_text("Welcome to Elbia Lambda, wile")
    expect(page.get_by_text("Acme Rockets")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You have signed out.")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))


def test_token_page_fits_a_phone(new_page, user, issue_token, artifacts):
    issue_token(user, scopes=["resources:read", "resources:write", "functions:read"], name="deploy bot")
    page = new_page(width=390, height=844)
    log_in(page, user.username)
    page.goto("/settings/tokens/")
    row = page.locator("#token-table tbody tr", has_text="deploy bot")
    expect(row.get_by_role("button", name="Revoke")).to_be_visible()
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=artifacts / "api-tokens-phone.png", full_page=True)


def test_resources_and_functions_overviews(page, user, artifacts):
    vpc = ResourceFactory(account=user.account, type="vpc", instance_type="", name="default", region="eu-west-1")
    ResourceFactory(account=user.account, name="web-1", region="eu-west-1", vpc=vpc)
    ResourceFactory(
        account=user.account, name="batch-1", region="us-east-1", status="failed", failure_reason="No capacity"
    )
    ResourceFactory(account=UserFactory().account, name="not-mine", region="eu-west-1")
    FunctionFactory(account=user.account, name="user-authentication", tags=["auth", "edge"])

    log_in(page, user.username)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Resources").click()
    table = page.locator("#resource-table")
    expect(table.locator("tbody tr")).to_have_count(4)  # the function's backing resource included
    expect(table).not_to_contain_text("not-mine")
    page.screenshot(path=artifacts / "resources.png", full_page=True)

    page.get_by_label("Region").select_option("eu-west-1")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"region=eu-west-1"))
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).not_to_contain_text("batch-1")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Functions").click()
    row = page.locator("#function-table tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("user-authentication")
    expect(row).to_contain_text("edge")
    assert page.console_errors == []
