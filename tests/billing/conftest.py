"""Billing fixtures: a private media root, a known price book, a function to meter."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from tests.billing.march import create_march_usage
from tests.factories import FunctionFactory, PriceFactory

# The test price book, effective from TEST_PRICES_FROM; rounder than the seeded AWS prices so that
# hand computations stay readable, and later than the seed so that it is the one that applies.
TEST_PRICES_FROM = date(2024, 1, 1)
TEST_PRICES = {
    ("request", ""): Decimal("2500"),  # per 1M requests: $0.0025 a request
    ("gb_second", ""): Decimal("0.01"),
    ("instance_hour", "t3.micro"): Decimal("0.0104"),
    ("instance_hour", "m5.large"): Decimal("0.096"),
}


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def prices(db):
    """The test price book (effective from 2024-01)."""
    return [
        PriceFactory(kind=kind, instance_type=instance_type, unit_price=price, effective_from=TEST_PRICES_FROM)
        for (kind, instance_type), price in TEST_PRICES.items()
    ]


@pytest.fixture
def function(account):
    """A 256 MB function of ``account``, created long ago."""
    return FunctionFactory(account=account, memory_mb=256, created_at=datetime(2020, 1, 1, tzinfo=UTC))


@pytest.fixture
def march_usage(account, other_user, prices):
    """``account``'s known usage of March 2024: see tests/billing/march.py for the hand computation."""
    create_march_usage(account, other_user.account)
