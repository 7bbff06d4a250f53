"""Teams in a browser: an owner invites a developer by email, the developer joins and makes a token, the owner
sees it and revokes it, then removes the developer, whose session and other tokens stop working at once."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.browser.test_dashboard import generate_token

pytestmark = pytest.mark.browser

PASSWORD = "a-long-enough-password-42"


def test_invite_join_token_revoke_remove(new_page, user, call_api, artifacts):
    owner = new_page()
    log_in(owner, user.username)
    owner.goto("/settings/members/")
    owner.get_by_role("link", name="Invite Member").click()
    owner.get_by_label("Email").fill("dev@example.com")
    owner.get_by_label("Developer").check()
    owner.get_by_role("button", name="Send invitation").click()
    expect(owner.get_by_role("status")).to_contain_text("We sent an invitation to dev@example.com (developer)")
    expect(owner.locator("#invitation-table")).to_contain_text("dev@example.com")
    owner.screenshot(path=artifacts / "members.png", full_page=True)

    link = re.search(r"http://\S+/invitations/\S+/", mail.outbox[-1].body).group(0)
    developer = new_page()
    developer.goto(link)
    expect(developer.get_by_role("heading", name=f"Join {user.account.name}")).to_be_visible()
    developer.get_by_label("Username").fill("newdev")
    developer.get_by_label("Password", exact=True).fill(PASSWORD)
    developer.get_by_label("Confirm password").fill(PASSWORD)
    developer.get_by_role("button", name="Sign up and join").click()
    expect(developer.get_by_role("status")).to_contain_text("you joined as developer")
    first, _ = generate_token(developer, "dev laptop", ["resources:read"])
    expect(developer.get_by_label("billing:read")).to_have_count(0)  # not offered to a developer
    assert call_api("/v1/resources", first)[0] == 200

    owner.goto("/settings/tokens/")
    row = owner.locator("#token-table tbody tr", has_text="dev laptop")
    expect(row.locator('[data-label="Created by"]')).to_have_text("newdev")
    row.get_by_role("button", name="Revoke").click()
    owner.get_by_role("dialog").get_by_role("button", name="Revoke token").click()
    expect(row).to_contain_text("Revoked by " + user.username)
    assert call_api("/v1/resources", first)[1]["error"]["message"] == "Invalid or missing API token"

    second, _ = generate_token(developer, "dev ci", ["resources:read"])
    assert call_api("/v1/resources", second)[0] == 200
    owner.goto("/settings/members/")
    owner.locator("#member-table tbody tr", has_text="newdev").get_by_role("link", name="Remove").click()
    owner.get_by_role("button", name="Remove member").click()
    expect(owner.get_by_role("status")).to_contain_text("newdev is no longer a member")
    assert call_api("/v1/resources", second)[0] == 401
    developer.goto("/resources/")
    expect(developer.get_by_role("heading", name="No customer account")).to_be_visible()
    assert owner.console_errors == []
    # The only console error: the 403 of that last page (no Content-Security-Policy violation, no script error).
    assert developer.console_errors == [
        "Failed to load resource: the server responded with a status of 403 (Forbidden)"
    ]
