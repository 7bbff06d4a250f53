"""The console in headless Chromium: create, watch, change and delete resources and functions, as a customer does.

The flows that wait for a status run a real Celery worker with a small provisioning delay, so the page
shows the transient status first and then, without a reload, the final one. Every page is photographed
at desktop and phone widths into test-artifacts/, and none scrolls sideways on a phone.
"""

import re
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.factories import InvoiceFactory, UsageEventFactory
from tests.functions.factories import FunctionFactory
from tests.resources.factories import ComputeFactory, VpcFactory

pytestmark = pytest.mark.browser

SETTLED = 40_000  # ms: how long a status may take to become final through the worker (a few steps of ~1 s)
NOT_RELOADED = "window.__notReloaded = true"


@pytest.fixture
def provisioning_takes_a_moment(settings):
    """Each provider step takes a second: long enough to see the transient status, short for a test."""
    settings.ELBIA_PROVISION_DELAY = 1.0


def script_errors(page) -> list[str]:
    """Console errors (a Content-Security-Policy violation is one), but the browser's notes of an HTTP error
    status: a refused form (400) and the 404 page are answers the tests check themselves."""
    return [error for error in page.console_errors if "the server responded with a status of" not in error]


def watch_status(page, *, first: str, final: str) -> None:
    """The live status shows ``first`` (a transient status), then ``final`` with no reload, then stops asking."""
    status = page.locator("#status")
    expect(status).to_have_text(re.compile(first))
    page.evaluate(NOT_RELOADED)
    expect(status).to_have_text(final, timeout=SETTLED)
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#lifecycle")).not_to_have_attribute("hx-get", re.compile(".*"))


def test_create_a_compute_instance_watch_it_become_active_and_rename_it(
    page, user, celery_worker, provisioning_takes_a_moment, artifacts
):
    log_in(page, user.username)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Resources").click()
    page.get_by_role("link", name="New compute instance").first.click()
    page.get_by_label("Name").fill("web-1")
    page.get_by_label("Region").select_option("eu-west-1")
    page.get_by_label("Instance type").select_option("t3.small")
    expect(page.get_by_label("Instance type").locator("option:checked")).to_have_text("t3.small · 2 vCPUs · 2 GB")
    page.get_by_label("VPC").select_option("default")
    page.get_by_label("Tags").fill("env=staging\nteam=web")
    page.get_by_role("button", name="Create instance").click()

    expect(page.get_by_role("heading", name="web-1", exact=True)).to_be_visible()
    watch_status(page, first="Pending|Provisioning", final="Active")
    timeline = page.get_by_role("list", name="Lifecycle")
    expect(timeline).to_contain_text("Active")
    expect(timeline).to_contain_text(f"Created by {user.username}")
    details = page.locator("#resource-details")
    expect(details).to_contain_text("t3.small · 2 vCPUs · 2 GB")
    expect(details).to_contain_text("env=staging")
    expect(page.locator("#vpc-resources")).to_contain_text("web-1 (this one)")
    page.screenshot(path=artifacts / "resource-created-active.png", full_page=True)

    page.get_by_role("link", name="Rename or tag").click()
    page.get_by_label("Name").fill("web-primary")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", name="web-primary", exact=True)).to_be_visible()
    expect(timeline).to_contain_text(f"Changed name by {user.username}")

    # Its VPC, the region's default one, now lists it; a second VPC is created from the list.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Resources").click()
    expect(page.locator("#resource-table")).to_contain_text("web-primary")
    page.get_by_role("link", name="New VPC").click()
    page.get_by_label("Name").fill("backend")
    page.get_by_label("Region").select_option("eu-west-1")
    page.get_by_role("button", name="Create VPC").click()
    expect(page.get_by_role("heading", name="backend", exact=True)).to_be_visible()

    # The list updates its rows too while one is changing.
    page.get_by_role("link", name="Resources", exact=True).last.click()
    row = page.locator("#resource-table tbody tr", has_text="backend")
    expect(row.locator('[data-label="Status"]')).to_contain_text(re.compile("Pending|Provisioning"))
    page.evaluate(NOT_RELOADED)
    expect(row.locator('[data-label="Status"]')).to_contain_text("Active", timeout=SETTLED)
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#list-rows")).not_to_have_attribute("hx-get", re.compile(".*"))
    assert script_errors(page) == []


def test_a_vpc_in_use_cannot_be_deleted_and_the_page_says_why(page, user, artifacts):
    vpc = VpcFactory(account=user.account, name="backend", region="eu-west-1")
    ComputeFactory(account=user.account, vpc=vpc, region="eu-west-1", name="api-1")
    log_in(page, user.username)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Resources").click()
    page.locator("#resource-table").get_by_role("link", name="backend").first.click()
    expect(page.locator("#vpc-resources")).to_contain_text("api-1")

    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading", name="Delete backend?")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(f"VPC {vpc.public_id} is still used by 1 live resource(s).")
    expect(page.locator("#vpc-resources")).to_contain_text("api-1")
    expect(page.get_by_role("button", name="Delete")).to_have_count(0)
    page.screenshot(path=artifacts / "vpc-delete-refused.png", full_page=True)
    page.get_by_role("link", name="Back", exact=True).click()
    expect(page.locator("#status")).to_have_text("Active")
    assert script_errors(page) == []


def test_create_a_function_watch_it_become_active_edit_it_and_delete_it(
    page, user, celery_worker, provisioning_takes_a_moment, artifacts
):
    secret = "never-shown-again-123"
    log_in(page, user.username)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Functions").click()
    page.get_by_role("link", name="New function").first.click()
    page.get_by_label("Name").fill("thumbnailer")
    page.get_by_label("Runtime").select_option("Python 3.12")
    page.get_by_label("Handler").fill("lambda_function")
    page.get_by_label("Memory (MB)").fill("256")
    page.get_by_label("Timeout (seconds)").fill("10")
    page.get_by_label("Region").select_option("eu-west-1")
    page.get_by_label("Tags").fill("images, edge")
    page.get_by_label("Environment variables").fill(f"API_KEY={secret}\nBUCKET=thumbs")
    page.get_by_role("button", name="Create function").click()

    # The service refuses the handler; its message is under the field, and the secret is not sent back.
    expect(page.locator(".field-error").first).to_contain_text("is not a valid handler for Python 3.12")
    expect(page.get_by_text("The values you typed are never sent back: enter them again.")).to_be_visible()
    assert secret not in page.content()
    page.get_by_label("Handler").fill("lambda_function.lambda_handler")
    page.get_by_label("Environment variables").fill(f"API_KEY={secret}\nBUCKET=thumbs")
    page.get_by_role("button", name="Create function").click()

    expect(page.get_by_role("heading", name="thumbnailer", exact=True)).to_be_visible()
    watch_status(page, first="Created|Deploying", final="Active")
    expect(page.locator("#environment")).to_contain_text("API_KEY")
    expect(page.locator("#function-details")).to_contain_text("256MB")
    assert secret not in page.content()
    page.screenshot(path=artifacts / "function-created-active.png", full_page=True)

    page.get_by_role("link", name="Edit configuration").click()
    page.get_by_label("Memory (MB)").fill("512")
    page.get_by_label("Set environment variables").fill("MODE=fast")
    page.get_by_label("BUCKET").check()
    page.get_by_role("button", name="Save and deploy").click()
    watch_status(page, first="Deploying", final="Active")
    expect(page.locator("#function-details")).to_contain_text("512MB")
    expect(page.locator("#environment")).to_contain_text("MODE")
    expect(page.locator("#environment")).not_to_contain_text("BUCKET")
    expect(page.get_by_role("list", name="Lifecycle")).to_contain_text(
        f"Changed environment, memory_mb by {user.username}"
    )

    page.get_by_role("link", name="Delete").click()
    expect(page.get_by_text("its compute resource")).to_be_visible()
    page.get_by_role("button", name="Delete").click()
    watch_status(page, first="Deleting", final="Deleted")
    expect(page.get_by_role("link", name="Edit configuration")).to_have_count(0)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Functions").click()
    expect(page.get_by_text("No functions yet")).to_be_visible()
    assert script_errors(page) == []


def console_data(account):
    """An account with something on every page: a VPC with instances, a failed one, functions, usage, an invoice."""
    # The seeded price book (live-server tests flush the database after each test, migration data included).
    import_module("billing.migrations.0002_seed_prices").seed_prices(apps, None)
    vpc = VpcFactory(account=account, name="production-network", region="eu-west-1", tags={"env": "production"})
    web = ComputeFactory(
        account=account,
        vpc=vpc,
        region="eu-west-1",
        name="web-frontend-primary",
        instance_type="m5.2xlarge",
        tags={"env": "production", "team": "storefront", "cost-center": "retail/online-shop"},
    )
    ComputeFactory.create_batch(3, account=account, vpc=vpc, region="eu-west-1")
    ComputeFactory(
        account=account,
        vpc=vpc,
        region="eu-west-1",
        name="batch-worker",
        status="failed",
        failed_at=timezone.now(),
        failure_reason="Simulated provisioning failure for this instance (tag simulate=fail): "
        "InsufficientInstanceCapacity in eu-west-1a, try another instance type.",
    )
    function = FunctionFactory(
        account=account,
        name="user-authentication-with-a-rather-long-name",
        runtime="Python 3.12",
        handler="src/handlers/authentication.lambda_handler",
        tags=["auth", "edge", "team:identity"],
        environment={"DATABASE_URL": "postgres://secret", "JWT_SIGNING_KEY_WITH_A_LONG_NAME": "secret"},
        last_executed=timezone.now() - timedelta(minutes=5),
    )
    UsageEventFactory.create_batch(5, function=function, duration_ms=1200)
    FunctionFactory(account=account, name="image-resizer", status="deploying", deployed_at=None)
    InvoiceFactory(account=account)
    return {"vpc": vpc, "web": web, "function": function}


def every_page(objects) -> dict[str, str]:
    """Every page of the dashboard a signed-in customer can open, by name."""
    vpc, web, function = objects["vpc"], objects["web"], objects["function"]
    return {
        "overview": "/",
        "resources": "/resources/",
        "resource": f"/resources/{web.public_id}/",
        "vpc": f"/resources/{vpc.public_id}/",
        "resource-new": "/resources/new/",
        "vpc-new": "/resources/new-vpc/",
        "resource-edit": f"/resources/{web.public_id}/edit/",
        "resource-delete": f"/resources/{web.public_id}/delete/",
        "vpc-delete-refused": f"/resources/{vpc.public_id}/delete/",
        "functions": "/functions/",
        "function": f"/functions/{function.public_id}/",
        "function-new": "/functions/new/",
        "function-edit": f"/functions/{function.public_id}/edit/",
        "function-code": f"/functions/{function.public_id}/code/",
        "function-deprecate": f"/functions/{function.public_id}/deprecate/",
        "function-delete": f"/functions/{function.public_id}/delete/",
        "usage": "/usage/",
        "invoices": "/billing/invoices/",
        "settings": "/settings/",
        "api-tokens": "/settings/tokens/",
        "api-token-new": "/settings/tokens/new/",
        "not-found": "/resources/RES_0000000000/",
    }


def test_every_page_at_desktop_and_phone_widths(new_page, user, artifacts):
    pages = every_page(console_data(user.account))
    wide = []
    for width, height, suffix in ((1280, 860, "desktop"), (390, 844, "phone")):
        page = new_page(width=width, height=height)
        log_in(page, user.username)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        for name, path in pages.items():
            response = page.goto(path)
            assert response.status == (404 if name == "not-found" else 200), name
            page.screenshot(path=artifacts / f"console-{name}-{suffix}.png", full_page=True)
            if suffix == "phone" and not page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"):
                wide.append(name)
        assert script_errors(page) == []  # no Content-Security-Policy violation on any page
    assert wide == [], f"these pages scroll sideways on a 390 px phone: {wide}"
