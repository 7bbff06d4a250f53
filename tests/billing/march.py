"""A month of known usage and its cost computed by hand, shared by the usage and invoice tests."""

from datetime import UTC, date, datetime
from decimal import Decimal

from tests.factories import FunctionFactory, PriceFactory, ResourceFactory, UsageEventFactory

MARCH = date(2024, 3, 1)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def create_march_usage(account, other_account) -> None:
    """Known executions and instances of ``account`` in and around March 2024 (and one of another account)."""
    PriceFactory(kind="request", unit_price="9999", effective_from=date(2024, 4, 1))  # too late for March
    small = FunctionFactory(account=account, memory_mb=128)
    large = FunctionFactory(account=account, memory_mb=1024)
    for duration in (1000, 2500, 400):
        UsageEventFactory(function=small, duration_ms=duration, timestamp=at("2024-03-05T10:00:00"))
    UsageEventFactory(function=small, duration_ms=100, timestamp=at("2024-03-31T23:59:59.999999"))
    UsageEventFactory(function=large, duration_ms=900_000, timestamp=at("2024-03-01T00:00:00"))
    UsageEventFactory(function=large, duration_ms=900_000, timestamp=at("2024-03-15T00:00:00"))
    UsageEventFactory(function=large, duration_ms=900_000, memory_mb=2048, timestamp=at("2024-03-15T01:00:00"))
    # Outside March, or another account's: not counted.
    UsageEventFactory(function=small, duration_ms=5000, timestamp=at("2024-04-01T00:00:00"))
    UsageEventFactory(function=small, duration_ms=5000, timestamp=at("2024-02-29T23:59:59.999999"))
    UsageEventFactory(function__account=other_account, duration_ms=5000, timestamp=at("2024-03-10T00:00:00"))

    def compute(instance_type, provisioned_at, **stops):
        return ResourceFactory(
            account=account, instance_type=instance_type, provisioned_at=at(provisioned_at), status="active", **stops
        )

    compute("t3.micro", "2024-03-10T00:00:00.250", deleting_started_at=at("2024-03-12T12:00:00"))  # 60 h
    compute("m5.large", "2024-02-20T00:00:00", deleting_started_at=at("2024-04-05T00:00:00"))  # all March: 744 h
    compute("t3.micro", "2024-03-20T10:00:00", failed_at=at("2024-03-20T10:00:30"))  # 30 s, billed 60 s
    compute("t3.micro", "2024-04-01T00:00:00")  # April
    compute(
        "t3.micro",
        "2024-02-01T00:00:00",
        deleting_started_at=at("2024-02-10T00:00:00"),
        deleted_at=at("2024-02-10T00:01:00"),
    )  # February
    ResourceFactory(account=account, instance_type="t3.micro", failed_at=at("2024-03-03T00:00:00"))  # never active
    ResourceFactory(account=account, type="vpc", instance_type="", provisioned_at=at("2024-03-01T00:00:00"))
    ResourceFactory(account=other_account, instance_type="m5.large", provisioned_at=at("2024-03-01T00:00:00"))


# The hand computation for march_usage with the test prices (tests/billing/conftest.py).
EXECUTIONS = 3 + 1 + 3
MB_MS = (1000 + 2500 + 400 + 100) * 128 + 900_000 * 1024 * 2 + 900_000 * 2048  # 3,686,912,000
GB_SECONDS = Decimal("3600.5")  # MB_MS / 1024 / 1000
REQUEST_CENTS = 2  # 7 * $2500 / 1M = $0.0175 -> 1.75 cents -> 2
DURATION_CENTS = 3601  # 3600.5 GB-s * $0.01 = $36.005 -> 3600.5 cents -> 3601 (half up)
T3_SECONDS = 60 * 3600 + 60  # 60 hours (start rounded down to the second) + the one-minute minimum
T3_CENTS = 62  # 216,060 s * $0.0104 / 3600 = $0.6241733 -> 62
M5_CENTS = 7142  # 744 h * $0.096 = $71.424 -> 7142
TOTAL_CENTS = REQUEST_CENTS + DURATION_CENTS + T3_CENTS + M5_CENTS  # 10807
