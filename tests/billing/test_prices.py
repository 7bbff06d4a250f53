"""The price book: seeded with AWS's public prices, history by month, validated, edited in the admin."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from billing.models import Price
from billing.selectors import PriceMissing, price_book_for_month
from resources.catalog import INSTANCE_TYPES
from tests.factories import PriceFactory

pytestmark = pytest.mark.django_db


def test_the_seed_prices_every_catalog_instance_type_and_lambda():
    seeded = Price.objects.filter(effective_from=date(2020, 1, 1))
    hourly = dict(seeded.filter(kind="instance_hour").values_list("instance_type", "unit_price"))
    assert set(hourly) == set(INSTANCE_TYPES)
    assert hourly["t2.micro"] == Decimal("0.0116")
    assert hourly["t3.micro"] == Decimal("0.0104")
    assert hourly["m5.large"] == Decimal("0.096")
    assert hourly["c5.large"] == Decimal("0.085")
    assert all(Decimal("0.001") < price < Decimal(10) for price in hourly.values())
    assert seeded.get(kind="request").unit_price == Decimal("0.20")
    assert seeded.get(kind="gb_second").unit_price == Decimal("0.0000166667")
    assert set(seeded.values_list("currency", flat=True)) == {"USD"}


def test_the_latest_price_on_or_before_the_month_applies():
    PriceFactory(kind="request", unit_price="0.25", effective_from=date(2024, 3, 1))
    PriceFactory(kind="request", unit_price="0.30", effective_from=date(2024, 6, 1))
    PriceFactory(kind="instance_hour", instance_type="t3.micro", unit_price="0.02", effective_from=date(2024, 4, 1))
    assert price_book_for_month(month=date(2024, 2, 1)).price("request") == Decimal("0.20")
    assert price_book_for_month(month=date(2024, 3, 1)).price("request") == Decimal("0.25")
    assert price_book_for_month(month=date(2024, 5, 1)).price("request") == Decimal("0.25")
    assert price_book_for_month(month=date(2024, 6, 1)).price("request") == Decimal("0.30")
    assert price_book_for_month(month=date(2024, 3, 1)).price("instance_hour", "t3.micro") == Decimal("0.0104")
    assert price_book_for_month(month=date(2024, 4, 1)).price("instance_hour", "t3.micro") == Decimal("0.02")
    assert price_book_for_month(month=date(2024, 4, 1)).price("instance_hour", "t2.micro") == Decimal("0.0116")


def test_a_month_before_any_price():
    book = price_book_for_month(month=date(2019, 12, 1))
    with pytest.raises(PriceMissing) as caught:
        book.price("instance_hour", "t3.micro")
    assert str(caught.value) == "No price for instance type 't3.micro' applies to 2019-12."


def test_the_price_book_is_one_query(django_assert_num_queries):
    with django_assert_num_queries(1):
        price_book_for_month(month=date(2025, 1, 1))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "instance_hour", "instance_type": ""}, "instance_type"),
        ({"kind": "instance_hour", "instance_type": "x9.huge"}, "instance_type"),
        ({"kind": "request", "instance_type": "t3.micro"}, "instance_type"),
        ({"kind": "request", "effective_from": date(2025, 1, 15)}, "effective_from"),
        ({"kind": "request", "unit_price": Decimal("-0.01")}, "unit_price"),
        ({"kind": "request", "currency": "EUR"}, "currency"),
        ({"kind": "nothing"}, "kind"),
    ],
)
def test_validation(fields, field):
    price = Price(**{"unit_price": Decimal("1"), "effective_from": date(2025, 1, 1), **fields})
    with pytest.raises(ValidationError) as caught:
        price.full_clean()
    assert field in caught.value.message_dict


def test_one_price_per_kind_and_month():
    PriceFactory(kind="gb_second", unit_price="0.00002", effective_from=date(2025, 1, 1))
    with pytest.raises(IntegrityError):
        PriceFactory(kind="gb_second", unit_price="0.00003", effective_from=date(2025, 1, 1))


def test_the_database_refuses_a_price_mid_month():
    with pytest.raises(IntegrityError):
        PriceFactory(kind="request", effective_from=date(2025, 1, 2))


def test_staff_edit_prices_in_the_admin(admin_client):
    response = admin_client.get("/admin/billing/price/")
    assert response.status_code == 200
    assert b"t3.micro" in response.content
    response = admin_client.post(
        "/admin/billing/price/add/",
        {
            "kind": "instance_hour",
            "instance_type": "t3.micro",
            "unit_price": "0.0110",
            "currency": "USD",
            "effective_from": "2026-01-01",
        },
    )
    assert response.status_code == 302
    assert price_book_for_month(month=date(2026, 1, 1)).price("instance_hour", "t3.micro") == Decimal("0.0110")
