"""The dashboard's Usage and Invoices pages: /v1's figures to the cent, the account's own invoices, real PDFs."""

import html
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.models import Invoice, Price
from billing.periods import current_month, format_month, month_end, next_month, previous_month
from billing.services import invoice_generate_for_month, invoice_mark_paid
from tests.billing.march import MARCH, TOTAL_CENTS, create_march_usage
from tests.factories import FunctionFactory, PriceFactory, ResourceFactory, UsageEventFactory

pytestmark = pytest.mark.django_db

# Prices later than the seeded ones (so these apply from 2024-01), the same as tests/billing's.
PRICES = {
    ("request", ""): "2500",
    ("gb_second", ""): "0.01",
    ("instance_hour", "t3.micro"): "0.0104",
    ("instance_hour", "m5.large"): "0.096",
}


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def prices(db):
    for (kind, instance_type), price in PRICES.items():
        PriceFactory(kind=kind, instance_type=instance_type, unit_price=price, effective_from=date(2024, 1, 1))


@pytest.fixture
def march_usage(account, other_user, prices):
    create_march_usage(account, other_user.account)


def text(response) -> str:
    return response.content.decode()


def figures(page: str) -> dict[str, str]:
    """The headline figures of a page: ``data-figure`` name -> the text shown."""
    return dict(re.findall(r'data-figure="(\w+)">([^<]*)<', page))


def cells(page: str, table_id: str, label: str) -> list[str]:
    """The text of every cell labelled ``label`` in the body of the table ``table_id``."""
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    return [
        html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
        for cell in re.findall(rf'<td data-label="{label}"[^>]*>(.*?)</td>', body, re.S)
    ]


def bars(page: str, chart: str) -> dict[str, float]:
    """A chart's bars: day -> height."""
    svg = re.search(rf'<svg[^>]*id="chart-{chart}".*?</svg>', page, re.S).group(0)
    return {
        day: float(height)
        for height, day in re.findall(r'<rect class="chart-bar"[^>]*height="([\d.]+)" data-day="([\d-]+)"', svg)
    }


# --- Usage --------------------------------------------------------------------------------------


def assert_same_as_api(page: str, body: dict) -> None:
    assert figures(page) == {
        "total_executions": f"{body['total_executions']:,}",
        "gigabytes_hour": body["gigabytes_hour"],
        "current_month_cost": body["current_month_cost"],
    }
    breakdown = body["breakdown"]
    assert cells(page, "usage-breakdown", "Item") == [line["description"] for line in breakdown]
    assert cells(page, "usage-breakdown", "Amount") == [line["amount"] for line in breakdown]
    quantities = cells(page, "usage-breakdown", "Quantity")
    for shown, line in zip(quantities, breakdown, strict=True):
        assert shown.replace(",", "") == f"{line['quantity']} {line['unit']}"
    prices = cells(page, "usage-breakdown", "Unit price")
    for shown, line in zip(prices, breakdown, strict=True):
        amount, per = shown.split(" per ")
        assert Decimal(amount.lstrip("$").replace(",", "")) == Decimal(line["unit_price"]) and per == line["price_unit"]
    assert f'id="usage-total">{body["current_month_cost"]}<' in page


def test_a_closed_months_figures_are_the_apis(signed_in, api, march_usage):
    response = signed_in.get("/usage/?month=2024-03")
    assert response.status_code == 200
    body = api.get("/v1/usage", {"month": "2024-03"}).json()
    assert body["cost_cents"] == TOTAL_CENTS
    page = text(response)
    assert_same_as_api(page, body)
    assert figures(page) == {"total_executions": "7", "gigabytes_hour": "1.0 GBh", "current_month_cost": "$108.07"}
    assert "Compute instances (m5.large)" in page and "744 hours" in page and "$71.42" in page
    assert "$2,500.00 per 1M requests" in page and "$0.0104 per hour" in page and "$0.01 per GB-second" in page
    assert "March 2024" in page and "the whole month" in page


def test_the_current_month_by_default_is_the_apis(signed_in, api, account, prices):
    function = FunctionFactory(account=account, memory_mb=2048, created_at=timezone.now() - timedelta(days=400))
    now = timezone.now()
    UsageEventFactory.create_batch(1234, function=function, duration_ms=900_000, timestamp=now)
    ResourceFactory(account=account, instance_type="m5.large", provisioned_at=now - timedelta(hours=3))
    page = text(signed_in.get("/usage/"))
    body = api.get("/v1/usage").json()
    assert body["period"] == format_month(current_month())
    figures_shown = figures(page)
    assert figures_shown["total_executions"] == "1,234"
    assert figures_shown["gigabytes_hour"] == body["gigabytes_hour"] == "617.0 GBh"
    # Running instances are metered up to each request's now: the page's cost may be a second behind at most.
    assert figures_shown["current_month_cost"] in {
        body["current_month_cost"],
        api.get("/v1/usage").json()["current_month_cost"],
    }
    assert cells(page, "usage-breakdown", "Item") == [line["description"] for line in body["breakdown"]]
    assert "metered up to now" in page


def test_an_empty_month_shows_zeros_and_an_empty_chart(signed_in, api, prices):
    page = text(signed_in.get("/usage/?month=2024-02"))
    assert_same_as_api(page, api.get("/v1/usage", {"month": "2024-02"}).json())
    assert figures(page)["current_month_cost"] == "$0.00"
    assert set(bars(page, "executions").values()) == {0.0}
    assert "No executions this month" in page


def test_the_chart_draws_each_day_of_the_month(signed_in, march_usage):
    page = text(signed_in.get("/usage/?month=2024-03"))
    executions = bars(page, "executions")
    assert list(executions) == [f"2024-03-{day:02d}" for day in range(1, 32)]
    # 3 executions on the 5th, 2 on the 15th, 1 on the 1st and the 31st, none on other days.
    assert max(executions, key=executions.get) == "2024-03-05"
    assert executions["2024-03-05"] > executions["2024-03-15"] > executions["2024-03-01"] > 0
    assert executions["2024-03-01"] == executions["2024-03-31"]
    assert [day for day, height in executions.items() if height] == [
        "2024-03-01",
        "2024-03-05",
        "2024-03-15",
        "2024-03-31",
    ]
    gigabyte_hours = bars(page, "gigabyte_hours")
    assert max(gigabyte_hours, key=gigabyte_hours.get) == "2024-03-15"  # 0.5 + 0.25 GBh
    assert "5 Mar 2024: 3 executions" in page
    assert " style=" not in page and "<script>" not in page  # the Content-Security-Policy allows neither


def test_the_month_picker_and_neighbours(signed_in, prices):
    page = text(signed_in.get("/usage/?month=2024-03"))
    assert 'href="?month=2024-02"' in page and 'href="?month=2024-04"' in page
    assert '<option value="2024-03" selected>March 2024</option>' in page
    this_month = text(signed_in.get("/usage/"))
    assert f'href="?month={format_month(previous_month(current_month()))}"' in this_month
    assert 'rel="next"' not in this_month  # no future months
    assert 'rel="prev"' not in text(signed_in.get("/usage/?month=2000-01"))


@pytest.mark.parametrize(
    "month", ["2024-13", "2024-3", "24-03", "2024-03-01", "２０２４-03", "1999-12", "", "2024-03%00", "x" * 5000]
)
def test_a_malformed_month_is_a_400_page(signed_in, api, prices, month):
    response = signed_in.get("/usage/", {"month": month})
    assert response.status_code == 400
    assert "The month must be written YYYY-MM, from 2000-01" in text(response)
    assert "data-figure" not in text(response)
    assert api.get("/v1/usage", {"month": month}).status_code == 400  # the API refuses the same


def test_a_future_month_is_a_400_page(signed_in, api, prices):
    future = format_month(next_month(current_month()))
    response = signed_in.get(f"/usage/?month={future}")
    assert response.status_code == 400
    assert f"{future} has not started yet" in html.unescape(text(response))
    assert api.get("/v1/usage", {"month": future}).status_code == 400


def test_unpriced_usage_says_so_as_the_api_does(signed_in, api, account, march_usage):
    Price.objects.filter(kind="instance_hour", instance_type="m5.large").delete()
    response = signed_in.get("/usage/?month=2024-03")
    assert response.status_code == 503
    page = html.unescape(text(response))
    assert "The cost of March 2024 can’t be shown yet: its prices are not available." in page
    assert "No price for instance type 'm5.large' applies to 2024-03." in page
    assert "data-figure" not in page and "usage-breakdown" not in page  # no cost at all rather than a wrong one
    assert len(bars(page, "executions")) == 31  # metered usage is still shown
    api_response = api.get("/v1/usage", {"month": "2024-03"})
    assert api_response.status_code == 503 and api_response.json()["error"]["code"] == "pricing_unavailable"


@pytest.mark.parametrize("events", [1, 300])
def test_usage_page_query_count_does_not_grow(signed_in, account, prices, django_assert_num_queries, events):
    function = FunctionFactory(account=account)
    UsageEventFactory.create_batch(events, function=function, timestamp=datetime(2024, 3, 9, tzinfo=UTC))
    ResourceFactory.create_batch(events, account=account, provisioned_at=datetime(2024, 3, 1, tzinfo=UTC))
    # session, user, account, price book, events aggregate, compute resources, daily aggregate
    with django_assert_num_queries(7):
        page = text(signed_in.get("/usage/?month=2024-03"))
    assert figures(page)["total_executions"] == f"{events:,}"


def test_usage_shows_only_the_accounts_usage(signed_in, account, other_user, prices):
    UsageEventFactory.create_batch(5, function__account=other_user.account, timestamp=datetime(2024, 3, 9, tzinfo=UTC))
    page = text(signed_in.get("/usage/?month=2024-03"))
    assert figures(page)["total_executions"] == "0" and set(bars(page, "executions").values()) == {0.0}


def test_the_overview_shows_this_months_usage(signed_in, api, account, prices):
    UsageEventFactory.create_batch(3, function__account=account, duration_ms=60_000, timestamp=timezone.now())
    page = text(signed_in.get("/"))
    body = api.get("/v1/usage").json()
    assert figures(page) == {
        "total_executions": "3",
        "gigabytes_hour": body["gigabytes_hour"],
        "current_month_cost": body["current_month_cost"],
    }


def test_pages_need_a_signed_in_user(client):
    for path in ("/usage/", "/billing/invoices/", "/billing/invoices/INV_0000000001/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(f"/login/?next={path}")


# --- Invoices ------------------------------------------------------------------------------------


def make_invoices(account, count: int, *, latest: date = date(2024, 3, 1)) -> list[Invoice]:
    """``count`` invoices of consecutive months ending with ``latest``, newest first."""
    made, month = [], latest
    for index in range(count):
        made.append(
            Invoice.objects.create(
                account=account, period=month, date=month_end(month), amount_cents=100_00 + index, status="paid"
            )
        )
        month = previous_month(month)
    return made


def test_invoices_are_the_accounts_newest_first(signed_in, account, other_user):
    mine = make_invoices(account, 3)
    theirs = make_invoices(other_user.account, 2)
    page = text(signed_in.get("/billing/invoices/"))
    assert cells(page, "invoice-table", "Invoice") == [invoice.public_id for invoice in mine]
    assert cells(page, "invoice-table", "Period") == ["March 2024", "February 2024", "January 2024"]
    assert cells(page, "invoice-table", "Date") == ["31 Mar 2024", "29 Feb 2024", "31 Jan 2024"]
    assert cells(page, "invoice-table", "Amount") == ["$100.00", "$100.01", "$100.02"]
    assert cells(page, "invoice-table", "Status") == ["Paid", "Paid", "Paid"]
    for invoice in theirs:
        assert invoice.public_id not in page
    assert 'aria-current="page">Invoices<' in page


def test_no_invoices_yet(signed_in):
    page = text(signed_in.get("/billing/invoices/"))
    assert "No invoices yet" in page and "invoice-table" not in page


@pytest.mark.parametrize("count", [1, 60])
def test_invoices_page_query_count_does_not_grow(signed_in, account, django_assert_num_queries, count):
    make_invoices(account, count)
    # session, user, account, count, one page of invoices (the PDF links are signed, not queried)
    with django_assert_num_queries(5):
        page = text(signed_in.get("/billing/invoices/"))
    assert len(cells(page, "invoice-table", "Invoice")) == min(count, 50)
    assert page.count("Download PDF</a>") == min(count, 50)


def test_invoices_page_pages_by_fifty(signed_in, account):
    invoices = make_invoices(account, 51)
    first = text(signed_in.get("/billing/invoices/"))
    assert 'href="?page=2"' in first and "1–50 of 51" in first
    assert cells(text(signed_in.get("/billing/invoices/?page=2")), "invoice-table", "Invoice") == [
        invoices[-1].public_id
    ]


def test_the_pdf_link_downloads_the_real_pdf(signed_in, client, account, march_usage):
    invoice = invoice_generate_for_month(account=account, month=MARCH)
    page = text(signed_in.get("/billing/invoices/"))
    links = re.findall(r'<a class="btn btn-sm" href="([^"]+)" download="([^"]+)"', page)
    assert links == [(links[0][0], f"{invoice.public_id}.pdf")]
    url = html.unescape(links[0][0])
    assert url.startswith("http://testserver/invoices/pdf/INV_")
    client.logout()  # a signed link needs no session
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF-")


def test_invoice_detail_shows_the_apis_lines(signed_in, api, account, march_usage):
    invoice = invoice_generate_for_month(account=account, month=MARCH)
    invoice_mark_paid(invoice=invoice)
    response = signed_in.get(f"/billing/invoices/{invoice.public_id}/")
    assert response.status_code == 200
    page = text(response)
    body = api.get(f"/v1/billing/invoices/{invoice.public_id}").json()
    assert cells(page, "invoice-lines", "Item") == [line["description"] for line in body["lines"]]
    assert cells(page, "invoice-lines", "Amount") == [line["amount"] for line in body["lines"]]
    assert "$108.07" in page and body["amount"] == "$108.07"
    assert "March 2024" in page and "Paid" in page
    pdf = re.search(r'href="([^"]+)" download="' + invoice.public_id, page).group(1)
    response = signed_in.get(html.unescape(pdf))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"


def test_another_accounts_invoice_is_a_404(signed_in, other_user):
    theirs = make_invoices(other_user.account, 1)[0]
    for path in (f"/billing/invoices/{theirs.public_id}/", "/billing/invoices/INV_123/", "/billing/invoices/nope%00/"):
        response = signed_in.get(path)
        assert response.status_code == 404
        assert theirs.public_id not in text(response)


def test_invoice_detail_query_count(signed_in, account, march_usage, django_assert_num_queries):
    invoice = invoice_generate_for_month(account=account, month=MARCH)
    # session, user, account, invoice, its lines
    with django_assert_num_queries(5):
        assert signed_in.get(f"/billing/invoices/{invoice.public_id}/").status_code == 200
