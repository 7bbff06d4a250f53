"""The admin's sign-in page in a real browser: its attempts are limited like the dashboard's, and audited."""

import pytest
from playwright.sync_api import expect

from elbia.audit.models import AuditEvent
from tests.browser.conftest import PASSWORD

pytestmark = pytest.mark.browser

ATTEMPTS = 3


def admin_log_in(page, username: str, password: str):
    """Fill the admin's sign-in form and submit it; the answer to the POST."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        page.get_by_role("button", name="Log in").click()
    return answer.value


def test_the_admin_sign_in_stops_a_guesser_even_with_the_right_password_and_audits_each_failure(
    page, staff_user, settings
):
    settings.ELBIA_LOGIN_ATTEMPTS = ATTEMPTS
    page.goto("/admin/")
    expect(page).to_have_url(f"{page.url.split('/admin/')[0]}/admin/login/?next=/admin/")
    for _ in range(ATTEMPTS):
        assert admin_log_in(page, staff_user.username, "not-the-password").status == 200
        expect(page.get_by_text("Please enter the correct username and password")).to_be_visible()

    refused = admin_log_in(page, staff_user.username, PASSWORD)  # the right password, too late
    assert refused.status == 429
    assert refused.headers["retry-after"] == str(int(settings.ELBIA_LOGIN_WINDOW))
    expect(page.get_by_text("Too many sign-in attempts")).to_be_visible()
    page.goto("/admin/")
    expect(page).to_have_url(f"{page.url.split('/admin/')[0]}/admin/login/?next=/admin/")  # not signed in

    failures = AuditEvent.objects.filter(action="user.login_failed", object_id=staff_user.username)
    assert failures.count() == ATTEMPTS
    assert {event.ip_address for event in failures} == {"127.0.0.1"}
