"""Pricing metered usage: pure arithmetic on exact integers and Decimals (no database, no Django models).

``billing.selectors`` reads the metered usage and the price book and prices it here; the benchmark's
raw floor prices with the same code.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from billing.money import CURRENCY, format_cents, line_amount_cents
from billing.periods import format_month
from elbia.errors import Unavailable
from resources.catalog import INSTANCE_TYPES

MB_MS_PER_GB_SECOND = 1024 * 1000
SECONDS_PER_HOUR = 3600
REQUESTS_PER_PRICE_UNIT = 1_000_000
DISPLAY_QUANTITY = Decimal("0.000001")
# The kinds of price (billing.models.PriceKind's values).
REQUEST, GB_SECOND, INSTANCE_HOUR = "request", "gb_second", "instance_hour"


class PriceMissing(Unavailable):
    """The price book has no price for a kind of usage in a month: the month cannot be priced (staff add it)."""

    code = "pricing_unavailable"

    def __init__(self, month: date, what: str):
        self.month, self.what = month, what
        super().__init__(f"No price for {what} applies to {format_month(month)}.")


@dataclass(frozen=True)
class PriceBook:
    """The prices that apply to one month: the latest ``effective_from`` on or before it, per kind."""

    month: date
    request: Decimal | None
    gb_second: Decimal | None
    instance_hour: dict[str, Decimal]

    def price(self, kind: str, instance_type: str = "") -> Decimal:
        value = self.instance_hour.get(instance_type) if kind == INSTANCE_HOUR else getattr(self, kind)
        if value is None:
            raise PriceMissing(self.month, f"instance type {instance_type!r}" if instance_type else kind)
        return value


@dataclass(frozen=True)
class UsageLine:
    """One priced line: the same shape in /v1/usage's breakdown and on an invoice."""

    kind: str
    instance_type: str
    description: str
    quantity: Decimal  # rounded to 6 places for display; the amount comes from the exact quantity
    unit: str
    unit_price: Decimal
    price_unit: str
    amount_cents: int

    @property
    def amount(self) -> str:
        return format_cents(self.amount_cents)


@dataclass(frozen=True)
class MeteredUsage:
    """An account's raw usage in a month, before pricing."""

    executions: int = 0
    mb_ms: int = 0  # sum of duration_ms * memory_mb over the month's executions: exact
    instance_seconds: dict[str, int] = field(default_factory=dict)  # billed seconds per instance type


@dataclass(frozen=True)
class Usage:
    """An account's priced usage in a month: what /v1/usage shows and what the invoice bills."""

    month: date
    total_executions: int
    gigabyte_seconds: Decimal  # exact
    lines: tuple[UsageLine, ...]
    currency: str = CURRENCY

    @property
    def cost_cents(self) -> int:
        return sum(line.amount_cents for line in self.lines)

    @property
    def gigabyte_hours(self) -> Decimal:
        return self.gigabyte_seconds / SECONDS_PER_HOUR

    @property
    def gigabytes_hour(self) -> str:
        """Function GB-hours for display, as the seed shows them: ``"42.3 GBh"``."""
        return f"{self.gigabyte_hours:,.1f} GBh"

    @property
    def current_month_cost(self) -> str:
        """The month's cost for display: ``"$2,345.00"``."""
        return format_cents(self.cost_cents)


def price_usage(metered: MeteredUsage, *, month: date, prices: PriceBook) -> Usage:
    """Price metered usage with the month's price book: each line's amount is rounded to cents once.

    The two function lines are always there (at zero when nothing ran); an instance type has a line
    when it ran. Usage the price book cannot price raises ``PriceMissing`` (nothing is billed at an
    invented price); a zero line without a price is left out.
    """
    gigabyte_seconds = Decimal(metered.mb_ms) / MB_MS_PER_GB_SECOND
    lines = []
    if metered.executions or prices.request is not None:
        unit_price = prices.price(REQUEST)
        lines.append(
            UsageLine(
                kind=REQUEST,
                instance_type="",
                description="Function requests",
                quantity=Decimal(metered.executions),
                unit="requests",
                unit_price=unit_price,
                price_unit="1M requests",
                amount_cents=line_amount_cents(metered.executions, unit_price, per=REQUESTS_PER_PRICE_UNIT),
            )
        )
    if metered.mb_ms or prices.gb_second is not None:
        unit_price = prices.price(GB_SECOND)
        lines.append(
            UsageLine(
                kind=GB_SECOND,
                instance_type="",
                description="Function duration",
                quantity=display_quantity(gigabyte_seconds),
                unit="GB-seconds",
                unit_price=unit_price,
                price_unit="GB-second",
                amount_cents=line_amount_cents(metered.mb_ms, unit_price, per=MB_MS_PER_GB_SECOND),
            )
        )
    for instance_type in sorted(metered.instance_seconds, key=_catalog_order):
        seconds = metered.instance_seconds[instance_type]
        unit_price = prices.price(INSTANCE_HOUR, instance_type)
        lines.append(
            UsageLine(
                kind=INSTANCE_HOUR,
                instance_type=instance_type,
                description=f"Compute instances ({instance_type})",
                quantity=display_quantity(Decimal(seconds) / SECONDS_PER_HOUR),
                unit="hours",
                unit_price=unit_price,
                price_unit="hour",
                amount_cents=line_amount_cents(seconds, unit_price, per=SECONDS_PER_HOUR),
            )
        )
    return Usage(
        month=month, total_executions=metered.executions, gigabyte_seconds=gigabyte_seconds, lines=tuple(lines)
    )


def display_quantity(quantity: Decimal) -> Decimal:
    """A quantity rounded to 6 places for display (amounts come from the exact quantity)."""
    return quantity.quantize(DISPLAY_QUANTITY, rounding=ROUND_HALF_UP)


_CATALOG_POSITION = {name: position for position, name in enumerate(INSTANCE_TYPES)}


def _catalog_order(instance_type: str) -> tuple[int, str]:
    return _CATALOG_POSITION.get(instance_type, len(_CATALOG_POSITION)), instance_type
