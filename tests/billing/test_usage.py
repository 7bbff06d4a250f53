"""GET /v1/usage: the month's figures, priced from the price book, equal to a hand computation."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from billing.money import format_cents, line_amount_cents
from billing.periods import current_month, format_month, next_month
from billing.selectors import usage_daily, usage_for_month
from tests.billing.march import (
    DURATION_CENTS,
    EXECUTIONS,
    GB_SECONDS,
    M5_CENTS,
    MARCH,
    MB_MS,
    REQUEST_CENTS,
    T3_CENTS,
    TOTAL_CENTS,
    at,
)
from tests.factories import FunctionFactory, ResourceFactory, UsageEventFactory

pytestmark = pytest.mark.django_db

URL = "/v1/usage"


def test_hand_computation_constants_are_consistent():
    assert MB_MS == 3_686_912_000
    assert Decimal(MB_MS) / 1024 / 1000 == GB_SECONDS
    assert TOTAL_CENTS == 10807


def test_usage_of_a_closed_month_equals_the_hand_computation(api, march_usage):
    response = api.get(URL, {"month": "2024-03"})
    assert response.status_code == 200
    assert response.json() == {
        "period": "2024-03",
        "total_executions": EXECUTIONS,
        "gigabytes_hour": "1.0 GBh",
        "gigabyte_hours": 1.000139,  # 3600.5 / 3600
        "current_month_cost": "$108.07",
        "cost_cents": TOTAL_CENTS,
        "currency": "USD",
        "breakdown": [
            {
                "kind": "request",
                "instance_type": None,
                "description": "Function requests",
                "quantity": "7",
                "unit": "requests",
                "unit_price": "2500",
                "price_unit": "1M requests",
                "amount_cents": REQUEST_CENTS,
                "amount": "$0.02",
            },
            {
                "kind": "gb_second",
                "instance_type": None,
                "description": "Function duration",
                "quantity": "3600.5",
                "unit": "GB-seconds",
                "unit_price": "0.01",
                "price_unit": "GB-second",
                "amount_cents": DURATION_CENTS,
                "amount": "$36.01",
            },
            {
                "kind": "instance_hour",
                "instance_type": "t3.micro",
                "description": "Compute instances (t3.micro)",
                "quantity": "60.016667",
                "unit": "hours",
                "unit_price": "0.0104",
                "price_unit": "hour",
                "amount_cents": T3_CENTS,
                "amount": "$0.62",
            },
            {
                "kind": "instance_hour",
                "instance_type": "m5.large",
                "description": "Compute instances (m5.large)",
                "quantity": "744",
                "unit": "hours",
                "unit_price": "0.096",
                "price_unit": "hour",
                "amount_cents": M5_CENTS,
                "amount": "$71.42",
            },
        ],
    }


def test_the_total_is_the_sum_of_the_rounded_lines(account, march_usage):
    usage = usage_for_month(account=account, month=MARCH)
    assert usage.cost_cents == sum(line.amount_cents for line in usage.lines) == TOTAL_CENTS
    assert usage.gigabyte_seconds == GB_SECONDS


def test_a_resource_across_two_months_is_billed_each_second_once(account, prices):
    ResourceFactory(
        account=account,
        instance_type="t3.micro",
        provisioned_at=at("2024-03-31T23:00:00.400"),
        deleting_started_at=at("2024-04-01T01:00:00.300"),
    )
    march = usage_for_month(account=account, month=MARCH).lines[-1]
    april = usage_for_month(account=account, month=date(2024, 4, 1)).lines[-1]
    assert (march.quantity, april.quantity) == (Decimal("1"), Decimal("1.000278"))  # 3600 s and 3601 s


def test_an_account_without_usage(api, prices):
    body = api.get(URL, {"month": "2024-03"}).json()
    assert body["total_executions"] == 0
    assert (body["gigabytes_hour"], body["gigabyte_hours"]) == ("0.0 GBh", 0.0)
    assert (body["current_month_cost"], body["cost_cents"]) == ("$0.00", 0)
    assert [line["kind"] for line in body["breakdown"]] == ["request", "gb_second"]


def test_the_current_month_is_the_default_and_meters_running_instances(api, account, prices):
    now = timezone.now()
    ResourceFactory(account=account, instance_type="m5.large", provisioned_at=now - timedelta(hours=2))
    body = api.get(URL).json()
    assert body["period"] == format_month(current_month())
    hours = Decimal(body["breakdown"][-1]["quantity"])
    assert Decimal(2) <= hours < Decimal("2.1")


def test_large_figures_use_thousands_separators(api, account, prices):
    function = FunctionFactory(account=account, memory_mb=10240)
    UsageEventFactory.create_batch(
        500, function=function, duration_ms=900_000, timestamp=at("2024-03-02T00:00:00")
    )  # 500 * 900 s * 10 GB = 4,500,000 GB-s = 1,250 GBh
    body = api.get(URL, {"month": "2024-03"}).json()
    assert body["gigabytes_hour"] == "1,250.0 GBh"
    assert body["current_month_cost"] == "$45,001.25"  # $45,000 of duration + 500 requests at $0.0025 = $1.25
    assert body["cost_cents"] == 4_500_125


def test_seeded_aws_prices_apply_without_a_newer_price_book(api, account):
    function = FunctionFactory(account=account, memory_mb=1024)
    UsageEventFactory.create_batch(3, function=function, duration_ms=1000, timestamp=at("2023-06-02T00:00:00"))
    body = api.get(URL, {"month": "2023-06"}).json()
    assert [line["unit_price"] for line in body["breakdown"]] == ["0.2", "0.0000166667"]
    assert body["cost_cents"] == 0  # 3 GB-s and 3 requests: well under a cent


def test_a_month_the_price_book_cannot_price(api, account):
    assert api.get(URL, {"month": "2019-05"}).json()["breakdown"] == []  # nothing ran: nothing to price
    UsageEventFactory(function__account=account, timestamp=at("2019-05-02T00:00:00"))
    response = api.get(URL, {"month": "2019-05"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "pricing_unavailable"
    assert response.json()["error"]["message"] == "No price for request applies to 2019-05."


@pytest.mark.parametrize(
    "month",
    ["2024-13", "2024-00", "2024-3", "24-03", "2024-03-01", "march", "", " 2024-03", "１２３４-０３", "1999-12"],
)
def test_malformed_months(api, month):
    response = api.get(URL, {"month": month})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "status": 400,
        "code": "invalid_parameter",
        "message": "Parameter 'month' must be a month as YYYY-MM, e.g. 2025-01.",
        "request_id": response["X-Request-ID"],
    }


def test_a_future_month(api):
    response = api.get(URL, {"month": format_month(next_month(current_month()))})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Parameter 'month' must not be a future month."


def test_query_count_does_not_depend_on_usage(api, account, prices, django_assert_num_queries):
    api.get(URL, {"month": "2024-03"})
    # price book, the month's function days, its compute rollups (one query); the token is cached
    with django_assert_num_queries(3):
        api.get(URL, {"month": "2024-03"})
    function = FunctionFactory(account=account)
    UsageEventFactory.create_batch(50, function=function, timestamp=at("2024-03-02T00:00:00"))
    ResourceFactory.create_batch(5, account=account, provisioned_at=at("2024-03-02T00:00:00"))
    with django_assert_num_queries(3):
        api.get(URL, {"month": "2024-03"})


class TestAccess:
    def test_anonymous(self, anonymous_api):
        response = anonymous_api.get(URL)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")

    def test_needs_billing_read(self, make_client, user):
        response = make_client(user, scopes=["usage:write"]).get(URL)
        assert response.status_code == 403
        assert response.json()["error"]["details"] == {"required_scope": "billing:read"}

    def test_post_is_not_allowed(self, api):
        assert api.post(URL, {}, format="json").status_code == 405


def test_daily_usage(account, march_usage):
    days = usage_daily(account=account, month=MARCH)
    assert [day.day for day in days] == [date(2024, 3, n) for n in range(1, 32)]
    by_day = {day.day.day: (day.executions, day.gigabyte_hours) for day in days}
    assert by_day[1] == (1, Decimal(900_000 * 1024) / 1024 / 1000 / 3600)
    assert by_day[5][0] == 3
    assert by_day[15][0] == 2
    assert by_day[31][0] == 1
    assert sum(executions for executions, _ in by_day.values()) == EXECUTIONS
    assert sum(hours for _, hours in by_day.values()) == GB_SECONDS / 3600


def test_daily_usage_of_the_current_month_stops_today(account):
    days = usage_daily(account=account, month=current_month())
    assert days[-1].day == timezone.now().date()


@pytest.mark.parametrize(
    ("cents", "text"), [(0, "$0.00"), (5, "$0.05"), (100, "$1.00"), (234500, "$2,345.00"), (123456789, "$1,234,567.89")]
)
def test_money_display(cents, text):
    assert format_cents(cents) == text


@pytest.mark.parametrize(
    ("quantity", "price", "per", "cents"),
    [
        (1, Decimal("0.005"), 1, 1),  # half a cent rounds up
        (1, Decimal("0.0049999"), 1, 0),
        (3, Decimal("0.0000166667"), 1, 0),
        (10**12, Decimal("0.0000166667"), 1_024_000, 1628),  # 976,562.5 GB-s
        (7, Decimal("2500"), 1_000_000, 2),
    ],
)
def test_rounding_happens_once_per_line(quantity, price, per, cents):
    assert line_amount_cents(quantity, price, per=per) == cents
