"""Billing months: a month is the date of its first day, in UTC."""

import re
from datetime import UTC, date, datetime, timedelta

from django.utils import timezone

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
EARLIEST_YEAR = 2000


def month_start(day: date) -> date:
    """The first day of ``day``'s month."""
    return day.replace(day=1)


def next_month(month: date) -> date:
    """The first day of the month after ``month``."""
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def previous_month(month: date) -> date:
    """The first day of the month before ``month``."""
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def month_end(month: date) -> date:
    """The last day of ``month`` (an invoice's ``date``)."""
    return next_month(month) - timedelta(days=1)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """The half-open UTC interval ``[start, end)`` of ``month``."""
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    following = next_month(month)
    return start, datetime(following.year, following.month, 1, tzinfo=UTC)


def current_month(now: datetime | None = None) -> date:
    """The month ``now`` (default: the present) falls in, in UTC."""
    return month_start((now or timezone.now()).astimezone(UTC).date())


def parse_month(text: str) -> date:
    """Parse ``YYYY-MM`` (year 2000 or later) into the first day of that month; ``ValueError`` otherwise."""
    match = _MONTH.fullmatch(text) if text.isascii() else None
    if match is None or int(match.group(1)) < EARLIEST_YEAR:
        raise ValueError(f"expected a month as YYYY-MM from {EARLIEST_YEAR}-01, e.g. 2025-01")
    return date(int(match.group(1)), int(match.group(2)), 1)


class FutureMonth(ValueError):
    """A month that has not started yet."""


def parse_past_month(text: str, *, now: datetime | None = None) -> date:
    """``parse_month`` for reading usage: ``FutureMonth`` for a month that has not started yet."""
    month = parse_month(text)
    if month > current_month(now):
        raise FutureMonth(f"{format_month(month)} has not started yet")
    return month


def closed_month(month: date, *, now: datetime | None = None) -> date:
    """The first day of ``month`` if it is over (only closed months are invoiced); ``ValueError`` otherwise."""
    month = month_start(month)
    if month >= current_month(now):
        raise ValueError(f"{format_month(month)} is not over yet: only closed months are invoiced.")
    return month


def format_month(month: date) -> str:
    """A month as ``YYYY-MM``."""
    return f"{month.year:04d}-{month.month:02d}"


def months_between(first: date, last: date) -> list[date]:
    """Every month from ``first`` to ``last``, both included (empty when ``first`` is later)."""
    months = []
    month = month_start(first)
    while month <= last:
        months.append(month)
        month = next_month(month)
    return months


def closed_months(*, since: datetime, before: date, limit: int) -> list[date]:
    """The months from ``since``'s month up to, not including, ``before``: the latest ``limit``, oldest first."""
    first = current_month(since)
    months: list[date] = []
    month = before
    while len(months) < limit:
        month = previous_month(month)
        if month < first:
            break
        months.append(month)
    return months[::-1]
