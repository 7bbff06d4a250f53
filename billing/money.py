"""Money: exact Decimal arithmetic, rounded to whole cents once per invoice line, and display strings."""

from decimal import ROUND_HALF_UP, Context, Decimal, localcontext

CURRENCY = "USD"
# Enough significant digits that no product of a metered quantity and a unit price is ever rounded before
# the one rounding to cents.
_CONTEXT = Context(prec=60)


def line_amount_cents(quantity: Decimal | int, unit_price: Decimal, *, per: int = 1) -> int:
    """``quantity * unit_price / per`` dollars in whole cents, rounded half up: the only rounding of money."""
    with localcontext(_CONTEXT):
        dollars = Decimal(quantity) * unit_price / per
        return int((dollars * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def format_cents(cents: int) -> str:
    """``234500`` -> ``"$2,345.00"`` (the seed's display format)."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{fraction:02d}"
