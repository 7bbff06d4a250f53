"""Reads for billing: the price book, metered usage and what it costs, daily usage, invoices.

One computation serves /v1/usage, the invoices and the dashboard: ``usage_for_accounts``
sums the month's daily rollups (``billing.rollups``: a handful of small queries for any number
of accounts, events and resources) and prices them with the month's price book. Money is
rounded once, to whole cents, per line.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.db.models import BigIntegerField, CharField, DateTimeField, F, QuerySet, Sum, Value
from django.utils import timezone

from billing.models import (
    ComputeUsageDay,
    FunctionUsageDay,
    Invoice,
    MeteringClose,
    OpenComputeSpan,
    OpenComputeSpans,
    Price,
    PriceKind,
)
from billing.money import CURRENCY
from billing.periods import current_month, month_bounds, month_end
from billing.pricing import (  # noqa: F401  (re-exported: the pricing is part of what billing reads)
    MB_MS_PER_GB_SECOND,
    REQUESTS_PER_PRICE_UNIT,
    SECONDS_PER_HOUR,
    MeteredUsage,
    PriceBook,
    PriceMissing,
    Usage,
    UsageLine,
    display_quantity,
    price_usage,
)
from billing.rollups import Span, metered_open_seconds, open_span_seconds
from elbia.accounts.models import Account
from functions.models import Function


def price_book_for_month(*, month: date) -> PriceBook:
    """The month's price book, in one query."""
    latest: dict[tuple[str, str], Decimal] = {}
    rows = Price.objects.filter(effective_from__lte=month, currency=CURRENCY).order_by(
        "kind", "instance_type", "-effective_from"
    )
    for kind, instance_type, unit_price in rows.values_list("kind", "instance_type", "unit_price"):
        latest.setdefault((kind, instance_type), unit_price)
    return PriceBook(
        month=month,
        request=latest.get((PriceKind.REQUEST, "")),
        gb_second=latest.get((PriceKind.GB_SECOND, "")),
        instance_hour={key[1]: value for key, value in latest.items() if key[0] == PriceKind.INSTANCE_HOUR},
    )


def usage_for_month(*, account: Account, month: date, now: datetime | None = None) -> Usage:
    """The account's priced usage for ``month`` (the current month: up to ``now``)."""
    return usage_for_accounts(account_ids=[account.id], month=month, now=now)[account.id]


def usage_for_accounts(
    *, account_ids: Iterable[int], month: date, now: datetime | None = None, prices: PriceBook | None = None
) -> dict[int, Usage]:
    """Priced usage of many accounts for one month, in a constant number of queries."""
    account_ids = list(account_ids)
    now = now or timezone.now()
    prices = prices or price_book_for_month(month=month)
    metered = metered_usage(account_ids=account_ids, month=month, now=now)
    return {account_id: price_usage(metered[account_id], month=month, prices=prices) for account_id in account_ids}


def metered_usage(*, account_ids: list[int], month: date, now: datetime) -> dict[int, MeteredUsage]:
    """Executions, MB-milliseconds and billed instance-seconds per account for ``month``, from the daily rollups.

    Five small queries for any number of accounts, events and resources: the month's function days,
    its compute days, the open spans metered by the daily close (counted), the ones not yet metered,
    and the close's date (``billing.rollups``).
    """
    start, end = month_bounds(month)
    last_day = (end - timedelta(days=1)).date()
    events = (
        FunctionUsageDay.objects.filter(account_id__in=account_ids, day__gte=start.date(), day__lte=last_day)
        .values("account_id")
        .annotate(executions=Sum("executions"), mb_ms=Sum("mb_ms"))
        .order_by()
    )
    totals = {row["account_id"]: (int(row["executions"] or 0), int(row["mb_ms"] or 0)) for row in events}
    seconds = instance_seconds(account_ids=account_ids, month=month, now=now)
    result = {}
    for account_id in account_ids:
        executions, mb_ms = totals.get(account_id, (0, 0))
        result[account_id] = MeteredUsage(
            executions=executions, mb_ms=mb_ms, instance_seconds=seconds.get(account_id, {})
        )
    return result


def instance_seconds(*, account_ids: list[int], month: date, now: datetime) -> dict[int, dict[str, int]]:
    """Billed seconds in ``active`` per account and instance type for ``month``, from the daily rollups.

    A compute resource is active from ``provisioned_at`` until the first of ``deleting_started_at``,
    ``deleted_at`` and ``failed_at`` (or ``now``). Each started second is billed: the span's start is
    rounded down and its end up to whole seconds, then clipped to the month, so a resource running
    across months is billed exactly once for every second. A span shorter than a minute is billed a
    minute, in the month it started. ``billing.rollups`` keeps the closed part per day; open spans
    add their seconds up to ``now`` here.
    """
    start, end = month_bounds(month)
    seconds: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    through, metered, fresh = None, [], []
    for kind, account_id, instance_type, amount, moment in _compute_rollups(account_ids, month):
        if kind == "days":
            seconds[account_id][instance_type] += int(amount)
        elif kind == "through":
            through = moment
        elif kind == "metered":
            metered.append((account_id, instance_type, int(amount)))
        else:
            fresh.append(Span(account_id, instance_type, moment, None))
    if through is not None and through < end and now > max(through, start):
        for account_id, instance_type, spans in metered:
            seconds[account_id][instance_type] += metered_open_seconds(
                spans, through=through, start=start, end=end, now=now
            )
    for span in fresh:
        seconds[span.account_id][span.instance_type] += open_span_seconds(span, start=start, end=end, now=now)
    return {
        account_id: {kind: value for kind, value in by_type.items() if value}
        for account_id, by_type in seconds.items()
        if any(by_type.values())
    }


def _compute_rollups(account_ids: list[int], month: date):
    """Everything the month's instance-seconds need from the rollups, in one ``UNION ALL`` query.

    Rows of (kind, account id, instance type, amount, moment): ``days`` (seconds summed over the
    month's compute days), ``through`` (the daily close), ``metered`` (open spans counted by it) and
    ``fresh`` (open spans begun since, with their start).
    """
    start, end = month_bounds(month)
    columns = ("row_kind", "account_id", "instance_type", "amount", "moment")
    no_moment = Value(None, output_field=DateTimeField())
    days = (
        ComputeUsageDay.objects.filter(account_id__in=account_ids, day__gte=start.date(), day__lte=month_end(month))
        .values("account_id", "instance_type")
        .annotate(row_kind=Value("days"), amount=Sum("seconds"), moment=no_moment)
        .order_by()
        .values_list(*columns)
    )
    through = (
        MeteringClose.objects.filter(pk=1)
        .annotate(
            row_kind=Value("through"),
            account=Value(None, output_field=BigIntegerField()),
            kind=Value("", output_field=CharField()),
            amount=Value(0, output_field=BigIntegerField()),
            moment=F("through"),
        )
        .values_list("row_kind", "account", "kind", "amount", "moment")
    )
    metered = (
        OpenComputeSpans.objects.filter(account_id__in=account_ids, spans__gt=0)
        .annotate(row_kind=Value("metered"), amount=F("spans"), moment=no_moment)
        .values_list(*columns)
    )
    fresh = (
        OpenComputeSpan.objects.filter(account_id__in=account_ids, provisioned_at__lt=end)
        .annotate(row_kind=Value("fresh"), amount=Value(0, output_field=BigIntegerField()), moment=F("provisioned_at"))
        .values_list(*columns)
    )
    return days.union(through, metered, fresh, all=True)


@dataclass(frozen=True)
class FunctionUsage:
    """One function's executions and duration in a month, and what they cost (``usage`` is ``None`` without prices)."""

    month: date
    executions: int
    gigabyte_seconds: Decimal
    usage: Usage | None
    pricing_unavailable: str = ""


def function_usage_for_month(*, function: Function, month: date) -> FunctionUsage:
    """``function``'s usage in ``month`` from its daily rollups, priced as the account's function lines are.

    The cost is the function's share of the month's "Function requests" and "Function duration" lines,
    each rounded to cents on its own (the account's invoice rounds the account's totals once).
    """
    totals = FunctionUsageDay.objects.filter(
        account_id=function.account_id, day__gte=month, day__lte=month_end(month), function=function
    ).aggregate(executions=Sum("executions"), mb_ms=Sum("mb_ms"))
    metered = MeteredUsage(executions=int(totals["executions"] or 0), mb_ms=int(totals["mb_ms"] or 0))
    gigabyte_seconds = display_quantity(Decimal(metered.mb_ms) / MB_MS_PER_GB_SECOND)
    try:
        usage = price_usage(metered, month=month, prices=price_book_for_month(month=month))
    except PriceMissing as exc:
        return FunctionUsage(month, metered.executions, gigabyte_seconds, None, str(exc))
    return FunctionUsage(month, metered.executions, gigabyte_seconds, usage)


@dataclass(frozen=True)
class DailyUsage:
    """Function usage on one UTC day, for the dashboard's chart."""

    day: date
    executions: int
    gigabyte_hours: Decimal


def usage_daily(*, account: Account, month: date, now: datetime | None = None) -> list[DailyUsage]:
    """Executions and GB-hours for each day of ``month`` (up to today in the current month): one query (rollups)."""
    rows = (
        FunctionUsageDay.objects.filter(account_id=account.id, day__gte=month, day__lte=month_end(month))
        .values("day")
        .annotate(executions=Sum("executions"), mb_ms=Sum("mb_ms"))
        .order_by()
    )
    by_day = {row["day"]: (int(row["executions"] or 0), int(row["mb_ms"] or 0)) for row in rows}
    last_day = month_end(month)
    if month == current_month(now):
        last_day = min(last_day, (now or timezone.now()).astimezone(UTC).date())
    days = []
    day = month
    while day <= last_day:
        executions, mb_ms = by_day.get(day, (0, 0))
        days.append(
            DailyUsage(
                day=day,
                executions=executions,
                gigabyte_hours=Decimal(mb_ms) / (MB_MS_PER_GB_SECOND * SECONDS_PER_HOUR),
            )
        )
        day += timedelta(days=1)
    return days


def invoice_list(*, account: Account) -> QuerySet[Invoice]:
    """The account's invoices, newest period first."""
    return Invoice.objects.for_account(account).order_by("-period", "-id")
