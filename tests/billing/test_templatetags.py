"""The dashboard's template helpers: chart axes and the display of figures."""

from datetime import date
from decimal import Decimal

import pytest

from billing.selectors import DailyUsage
from billing.templatetags.billing import figure, nice_ceiling, unit_price, usage_chart


@pytest.mark.parametrize(
    ("value", "whole", "top"),
    [
        (0, False, 1),
        (0.0003, False, 0.0005),
        (0.25, False, 0.25),
        (0.7, False, 1),
        (101, False, 200),
        (0, True, 2),
        (1, True, 2),
        (3, True, 4),
        (25, True, 30),
        (99, True, 100),
        (1234, True, 2000),
    ],
)
def test_axis_tops_are_round(value, whole, top):
    assert nice_ceiling(value, whole=whole) == pytest.approx(top)


def test_a_chart_has_a_bar_per_day_scaled_to_the_axis():
    days = [
        DailyUsage(day=date(2024, 3, day), executions=count, gigabyte_hours=Decimal(0))
        for day, count in ((1, 2), (2, 4), (3, 7))
    ]
    chart = usage_chart(days, "executions", "Executions", "executions")
    assert [bar.label for bar in chart["bars"]] == ["2 executions", "4 executions", "7 executions"]
    assert [tick.label for tick in chart["ticks"]] == ["0", "4", "8"]  # 7 executions: the axis goes to 8
    heights = [bar.height for bar in chart["bars"]]
    assert heights[2] == pytest.approx(3.5 * heights[0]) and heights[2] < 200 and not chart["empty"]
    assert all(bar.y + bar.height == pytest.approx(chart["baseline"]) for bar in chart["bars"])


def test_figures_are_shown_as_the_api_writes_them_with_separators():
    assert figure("3600.5") == "3,600.5" and figure("744") == "744" and figure("0.000000") == "0"
    assert unit_price("0.2") == "$0.20" and unit_price("2500") == "$2,500.00"
    assert unit_price("0.0000166667") == "$0.0000166667" and unit_price("0.0104") == "$0.0104"
