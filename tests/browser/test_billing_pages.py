"""Usage and Invoices in headless Chromium: the month's figures and chart, the invoice list, a real PDF download."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import UsageEvent
from billing.periods import current_month, format_month, month_bounds, month_end, previous_month
from billing.services import invoice_generate_for_month, invoice_mark_paid
from tests.browser.conftest import log_in
from tests.factories import FunctionFactory, PriceFactory, ResourceFactory

pytestmark = pytest.mark.browser


def executions_on(day: int) -> int:
    """A varied but fixed number of executions for a day of the month."""
    return (day * 7) % 23 + 3


def record_month(function, month, last_day: int) -> int:
    """Executions of ``function`` on each day of ``month`` up to ``last_day``; how many."""
    start, _ = month_bounds(month)
    events = [
        UsageEvent(
            account=function.account,
            function=function,
            event_id=f"{format_month(month)}-{day}-{n}",
            timestamp=start + timedelta(days=day - 1, hours=n % 24, minutes=n),
            duration_ms=800 + 40 * n,
            memory_mb=function.memory_mb,
        )
        for day in range(1, last_day + 1)
        for n in range(executions_on(day))
    ]
    UsageEvent.objects.bulk_create(events)
    return len(events)


def test_usage_and_invoices(page, user, settings, tmp_path, artifacts):
    settings.MEDIA_ROOT = tmp_path / "media"
    for kind, instance_type, price in [
        ("request", "", "0.20"),
        ("gb_second", "", "0.0000166667"),
        ("instance_hour", "t3.micro", "0.0104"),
    ]:
        PriceFactory(kind=kind, instance_type=instance_type, unit_price=price, effective_from=datetime(2024, 1, 1))
    account = user.account
    this_month = current_month()
    last_month, month_before = previous_month(this_month), previous_month(previous_month(this_month))
    account.created_at = month_bounds(month_before)[0]
    account.save()
    function = FunctionFactory(account=account, name="thumbnailer", memory_mb=512, created_at=account.created_at)
    now = timezone.now()
    ran = record_month(function, this_month, now.astimezone(UTC).day - 1)  # up to yesterday: never in the future
    record_month(function, last_month, month_end(last_month).day)
    ResourceFactory(account=account, name="web-1", provisioned_at=month_bounds(month_before)[0])
    invoice_mark_paid(invoice=invoice_generate_for_month(account=account, month=month_before))
    latest = invoice_generate_for_month(account=account, month=last_month)

    log_in(page, user.username)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    expect(page.locator('[data-figure="total_executions"]')).to_have_text(f"{ran:,}")
    expect(page.locator("#usage-breakdown tbody tr")).to_have_count(3)  # requests, duration, t3.micro
    expect(page.locator("#chart-executions rect.chart-bar")).to_have_count(now.astimezone(UTC).day)
    page.screenshot(path=artifacts / "usage.png", full_page=True)

    page.get_by_label("Month", exact=True).select_option(format_month(last_month))
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(rf"\?month={format_month(last_month)}$"))
    expect(page.locator("#usage-period")).to_contain_text("the whole month")
    expect(page.locator('[data-figure="current_month_cost"]')).to_have_text(latest.amount)  # as invoiced

    nav.get_by_role("link", name="Invoices").click()
    rows = page.locator("#invoice-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(latest.public_id)
    expect(rows.first).to_contain_text("Open")
    expect(rows.nth(1)).to_contain_text("Paid")
    page.screenshot(path=artifacts / "invoices.png", full_page=True)

    link = rows.first.get_by_role("link", name=f"Download PDF of {latest.public_id}")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == f"{latest.public_id}.pdf"
    assert download.path().read_bytes().startswith(b"%PDF-")
    response = page.request.get(link.get_attribute("href"))
    assert response.status == 200 and response.headers["content-type"] == "application/pdf"

    rows.first.get_by_role("link", name=latest.public_id, exact=True).click()
    expect(page.get_by_role("heading", name=f"Invoice {latest.public_id}")).to_be_visible()
    expect(page.locator("#invoice-lines")).to_contain_text("Function duration")
    expect(page.locator("#invoice-amount")).to_contain_text(latest.amount)

    # On a phone: nothing wider than the screen (the charts scale, the tables become cards).
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/usage/", "/billing/invoices/"):
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), path
    page.screenshot(path=artifacts / "invoices-phone.png", full_page=True)
    assert page.console_errors == []  # no Content-Security-Policy violation
