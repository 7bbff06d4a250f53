"""Template helpers of the billing pages: the daily usage chart (inline SVG, drawn on the server), figures and links.

The chart is plain SVG geometry computed here (bar positions and heights as numbers in presentation
attributes) and coloured by classes in dashboard.css: the Content-Security-Policy allows no inline
style or script, and no charting library is loaded.
"""

import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django import template

from billing.links import invoice_pdf_url
from billing.periods import format_month

register = template.Library()

# The chart's coordinate system (the SVG scales to its container's width, keeping this aspect ratio).
WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 12, 24
PLOT_WIDTH, PLOT_HEIGHT = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
BAR_FILL = 0.72  # the share of a day's slot its bar takes


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    label: str  # the day's figure as shown in its tooltip


@dataclass(frozen=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True)
class DayLabel:
    x: float
    label: str


def nice_ceiling(value: float, *, whole: bool = False) -> float:
    """The top of a y axis: the smallest "round" number at least ``value`` (1 for nothing).

    Round means 1, 2, 2.5 or 5 times a power of ten; for counts (``whole``) a number whose half is
    whole too, so the middle grid line never reads "12.5 executions".
    """
    if value <= 0:
        return 2 if whole else 1
    magnitude = 10 ** math.floor(math.log10(value))
    if whole:
        steps = (1, 2, 3, 4, 5, 6, 8, 10) if magnitude >= 10 else (2, 4, 6, 8, 10)
        magnitude = max(magnitude, 1)
    else:
        steps = (1, 2, 2.5, 5, 10)
    return next(step * magnitude for step in steps if value <= step * magnitude * (1 + 1e-12))


def _number(value: float, *, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@register.inclusion_tag("billing/_usage_chart.html")
def usage_chart(days, metric: str, title: str, unit: str, decimals: int = 0):
    """A bar chart of ``metric`` (``executions`` or ``gigabyte_hours``) of each ``DailyUsage`` in ``days``."""
    values = [float(getattr(day, metric)) for day in days]
    top = nice_ceiling(max(values, default=0), whole=decimals == 0)
    slot = PLOT_WIDTH / max(len(days), 1)
    bar_width = round(slot * BAR_FILL, 2)
    bars = []
    for index, (day, value) in enumerate(zip(days, values, strict=True)):
        height = round(PLOT_HEIGHT * value / top, 2)
        if value > 0:
            height = max(height, 1.5)  # a day with any usage is visible
        bars.append(
            Bar(
                x=round(LEFT + index * slot + (slot - bar_width) / 2, 2),
                y=round(TOP + PLOT_HEIGHT - height, 2),
                width=bar_width,
                height=height,
                day=day.day,
                label=f"{_number(value, decimals=decimals)} {unit}",
            )
        )
    ticks = [
        Tick(y=round(TOP + PLOT_HEIGHT * (1 - share), 2), label=_number(top * share, decimals=max(decimals, 6)))
        for share in (0, 0.5, 1)
    ]
    day_labels = [
        DayLabel(x=round(LEFT + index * slot + slot / 2, 2), label=str(day.day.day))
        for index, day in enumerate(days)
        if day.day.day in (1, 8, 15, 22, 29)
    ]
    return {
        "title": title,
        "unit": unit,
        "bars": bars,
        "ticks": ticks,
        "day_labels": day_labels,
        "empty": not any(values),
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "baseline": TOP + PLOT_HEIGHT,
        "middle_x": LEFT + PLOT_WIDTH / 2,
        "middle_y": TOP + PLOT_HEIGHT / 2,
        "label_y": HEIGHT - 6,
        "tick_x": LEFT - 6,
        "chart_id": f"chart-{metric}",
    }


@register.filter
def month_name(month: date) -> str:
    """``date(2024, 3, 1)`` -> ``"March 2024"``."""
    return month.strftime("%B %Y")


@register.filter
def yyyymm(month: date) -> str:
    """``date(2024, 3, 1)`` -> ``"2024-03"``."""
    return format_month(month)


@register.filter
def thousands(value) -> str:
    """``1234567`` -> ``"1,234,567"``."""
    return f"{int(value):,}"


@register.filter
def unit_price(value) -> str:
    """A price per unit in dollars, with at least the cents: ``"0.2"`` -> ``"$0.20"``, ``"0.0104"`` -> ``"$0.0104"``."""
    price = Decimal(str(value)).normalize()
    if price.as_tuple().exponent > -2:
        price = price.quantize(Decimal("0.01"))
    return f"${price:,f}"


@register.filter
def figure(value) -> str:
    """A decimal string or number as /v1 shows it, with thousands separators: ``"3600.5"`` -> ``"3,600.5"``."""
    return format(Decimal(str(value)).normalize(), ",f")


@register.simple_tag(takes_context=True)
def pdf_link(context, invoice) -> str:
    """A freshly signed link to ``invoice``'s PDF."""
    return invoice_pdf_url(invoice.public_id, request=context["request"])
