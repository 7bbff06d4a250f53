"""Recompute the usage rollups from the raw rows (usage events, resources) and compare or repair them.

What the rollups must hold is a function of the raw rows and ``MeteringClose.through``
(``billing.rollups``): ``expected_*`` compute it, ``stored_*`` read it, ``reconcile`` compares them
account by account and, with ``fix``, rewrites the accounts that differ (under the accounts'
billing locks and the exclusive metering lock, so ingestion and lifecycle writes wait).

The raw recomputation is deliberately independent of the incremental code: function days are
grouped in SQL from the events; compute days are summed per span, whole days as ranges (so a
two-year-old instance costs two partial days and one range, not 730 rows).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Q, Sum

from billing.locks import lock_accounts_billing
from billing.models import (
    ComputeUsageDay,
    FunctionUsageDay,
    OpenComputeSpan,
    OpenComputeSpans,
    UsageEvent,
)
from billing.periods import month_bounds
from billing.rollups import (
    DAY,
    MB_MS,
    MINIMUM_INSTANCE_SECONDS,
    SECONDS_PER_DAY,
    _lock,
    ceil_second,
    floor_second,
    function_days_from_events,
    is_metered,
    span_days_compact,
    span_of,
)
from billing.selectors import MeteredUsage
from elbia.accounts.models import Account
from resources.models import LIFECYCLE_FIELDS, Resource, ResourceType

CHUNK = 200


@dataclass(frozen=True)
class Difference:
    """One rollup row that is not what the raw rows say (``None``: missing on that side)."""

    table: str
    account_id: int
    key: tuple
    stored: object
    expected: object


@dataclass
class Report:
    """What a reconciliation found (and, with ``fix``, repaired)."""

    accounts: int = 0
    differences: list[Difference] = field(default_factory=list)
    repaired_accounts: int = 0

    def by_table(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for difference in self.differences:
            counts[difference.table] += 1
        return dict(counts)


@dataclass
class Rollups:
    """Every rollup row of some accounts, keyed as in the tables."""

    function_days: dict[tuple, tuple] = field(default_factory=dict)  # (account, day, function) -> (n, mb_ms, ms)
    compute_days: dict[tuple, int] = field(default_factory=dict)  # (account, instance type, day) -> seconds
    metered_spans: dict[tuple, int] = field(default_factory=dict)  # (account, instance type) -> open spans
    fresh_spans: dict[int, tuple] = field(default_factory=dict)  # resource id -> (account, type, provisioned_at)


def expected(account_ids: list[int], through: datetime | None) -> Rollups:
    """The rollups the raw rows of ``account_ids`` call for."""
    result = Rollups()
    for account_id, day, function_id, executions, mb_ms, duration in function_days_from_events(
        UsageEvent.objects.filter(account_id__in=account_ids)
    ):
        result.function_days[account_id, day, function_id] = (executions, mb_ms, duration)

    partial: dict[tuple, int] = defaultdict(int)
    markers: dict[tuple[int, str], dict[date, int]] = defaultdict(lambda: defaultdict(int))
    rows = (
        Resource.objects.filter(account_id__in=account_ids, type="compute", provisioned_at__isnull=False)
        .order_by()
        .values_list("id", *LIFECYCLE_FIELDS)
    )
    for resource_id, *values in rows.iterator(chunk_size=5000):
        span = span_of(**dict(zip(LIFECYCLE_FIELDS, values, strict=True)))
        kind = (span.account_id, span.instance_type)
        days, whole = span_days_compact(span, through)
        for day, seconds in days.items():
            partial[(*kind, day)] += seconds
        if whole is not None:
            markers[kind][whole[0]] += 1
            markers[kind][whole[1]] -= 1
        if span.stop is None:
            if is_metered(span, through):
                result.metered_spans[kind] = result.metered_spans.get(kind, 0) + 1
            else:
                result.fresh_spans[resource_id] = (*kind, span.provisioned_at)
    compute: dict[tuple, int] = dict(partial)
    for kind, changes in markers.items():
        covering, day, last = 0, min(changes), max(changes)
        while day < last:
            covering += changes.get(day, 0)
            if covering:
                compute[(*kind, day)] = compute.get((*kind, day), 0) + covering * SECONDS_PER_DAY
            day += DAY
    result.compute_days = {key: seconds for key, seconds in compute.items() if seconds}
    return result


def stored(account_ids: list[int]) -> Rollups:
    """The rollup rows stored for ``account_ids``."""
    result = Rollups()
    for a, d, f, n, mb, ms in FunctionUsageDay.objects.filter(account_id__in=account_ids).values_list(
        "account_id", "day", "function_id", "executions", "mb_ms", "duration_ms"
    ):
        if n or mb or ms:
            result.function_days[a, d, f] = (n, mb, ms)
    for a, kind, d, seconds in ComputeUsageDay.objects.filter(account_id__in=account_ids).values_list(
        "account_id", "instance_type", "day", "seconds"
    ):
        if seconds:
            result.compute_days[a, kind, d] = seconds
    for a, kind, spans in OpenComputeSpans.objects.filter(account_id__in=account_ids).values_list(
        "account_id", "instance_type", "spans"
    ):
        if spans:
            result.metered_spans[a, kind] = spans
    for resource_id, a, kind, moment in OpenComputeSpan.objects.filter(account_id__in=account_ids).values_list(
        "resource_id", "account_id", "instance_type", "provisioned_at"
    ):
        result.fresh_spans[resource_id] = (a, kind, moment)
    return result


def _differences(have: Rollups, want: Rollups) -> list[Difference]:
    found = []
    for table in ("function_days", "compute_days", "metered_spans", "fresh_spans"):
        mine, theirs = getattr(have, table), getattr(want, table)
        for key in sorted(set(mine) | set(theirs), key=repr):
            if mine.get(key) != theirs.get(key):
                account_id = (theirs.get(key) or mine.get(key))[0] if table == "fresh_spans" else key[0]
                found.append(Difference(table, account_id, key, mine.get(key), theirs.get(key)))
    return found


def _copy_rows(model, columns: list[str], rows: list[tuple]) -> None:
    """Insert many rows: COPY on PostgreSQL, bulk_create elsewhere."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        table = connection.ops.quote_name(model._meta.db_table)
        names = ", ".join(connection.ops.quote_name(model._meta.get_field(name).column) for name in columns)
        with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    model.objects.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=1000)


def _rewrite(account_ids: list[int], want: Rollups) -> None:
    for model in (FunctionUsageDay, ComputeUsageDay, OpenComputeSpans, OpenComputeSpan):
        model.objects.filter(account_id__in=account_ids).delete()
    _copy_rows(
        FunctionUsageDay,
        ["account", "day", "function", "executions", "mb_ms", "duration_ms"],
        [(*key, *values) for key, values in want.function_days.items()],
    )
    _copy_rows(
        ComputeUsageDay,
        ["account", "instance_type", "day", "seconds"],
        [(*key, seconds) for key, seconds in want.compute_days.items()],
    )
    _copy_rows(
        OpenComputeSpans,
        ["account", "instance_type", "spans"],
        [(*key, spans) for key, spans in want.metered_spans.items()],
    )
    _copy_rows(
        OpenComputeSpan,
        ["resource_id", "account", "instance_type", "provisioned_at"],
        [(resource_id, *values) for resource_id, values in want.fresh_spans.items()],
    )


def reconcile(*, account_ids: Iterable[int] | None = None, fix: bool = False, chunk: int = CHUNK) -> Report:
    """Compare every account's rollups with the raw rows; with ``fix``, rewrite the accounts that differ."""
    accounts = Account.objects.order_by("id").values_list("id", flat=True)
    if account_ids is not None:
        accounts = accounts.filter(id__in=list(account_ids))
    report = Report()
    last_id = 0
    while batch := list(accounts.filter(id__gt=last_id)[:chunk]):
        last_id = batch[-1]
        with transaction.atomic():
            if fix:
                lock_accounts_billing(batch, shared=False)
            through = _lock(shared=not fix)
            want = expected(batch, through)
            differences = _differences(stored(batch), want)
            if fix and differences:
                differing = sorted({difference.account_id for difference in differences})
                _rewrite(differing, _restrict(want, set(differing)))
                report.repaired_accounts += len(differing)
        report.accounts += len(batch)
        report.differences += differences
    return report


def _restrict(rollups: Rollups, account_ids: set[int]) -> Rollups:
    return Rollups(
        function_days={k: v for k, v in rollups.function_days.items() if k[0] in account_ids},
        compute_days={k: v for k, v in rollups.compute_days.items() if k[0] in account_ids},
        metered_spans={k: v for k, v in rollups.metered_spans.items() if k[0] in account_ids},
        fresh_spans={k: v for k, v in rollups.fresh_spans.items() if v[0] in account_ids},
    )


# --- the reference computation from raw rows (the rollups' definition) ----------------------------------


def metered_usage_from_raw(*, account_ids: list[int], month: date, now: datetime) -> dict[int, MeteredUsage]:
    """The reference: what ``billing.selectors.metered_usage`` must give, straight from the raw rows."""
    start, end = month_bounds(month)
    events = (
        UsageEvent.objects.filter(account_id__in=account_ids, timestamp__gte=start, timestamp__lt=end)
        .values("account_id")
        .annotate(executions=Count("id"), mb_ms=Sum(MB_MS))
        .order_by()
    )
    totals = {row["account_id"]: (row["executions"], int(row["mb_ms"] or 0)) for row in events}
    seconds = instance_seconds_from_raw(account_ids=account_ids, month=month, now=now)
    result = {}
    for account_id in account_ids:
        executions, mb_ms = totals.get(account_id, (0, 0))
        result[account_id] = MeteredUsage(
            executions=executions, mb_ms=mb_ms, instance_seconds=seconds.get(account_id, {})
        )
    return result


def instance_seconds_from_raw(*, account_ids: list[int], month: date, now: datetime) -> dict[int, dict[str, int]]:
    """Billed seconds in ``active`` per account and instance type for ``month``: one query.

    A compute resource is active from ``provisioned_at`` until the first of ``deleting_started_at``,
    ``deleted_at`` and ``failed_at`` (or ``now``). Each started second is billed: the span's start is
    rounded down and its end up to whole seconds, then clipped to the month, so a resource running
    across months is billed exactly once for every second. A span shorter than a minute is billed a
    minute, in the month it started. There is one row per resource here, never one per event.
    """
    start, end = month_bounds(month)
    rows = (
        Resource.objects.filter(
            account_id__in=account_ids, type=ResourceType.COMPUTE, provisioned_at__isnull=False, provisioned_at__lt=end
        )
        .filter(Q(deleted_at__isnull=True) | Q(deleted_at__gte=start))
        .order_by()  # the sum does not care, and the model's default ordering made PostgreSQL sort on disk
        .values_list("account_id", "instance_type", "provisioned_at", "deleting_started_at", "deleted_at", "failed_at")
    )
    seconds: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for account_id, instance_type, provisioned_at, *stops in rows:
        active_from = floor_second(provisioned_at)
        active_to = min([stop for stop in stops if stop is not None and stop >= provisioned_at] + [now])
        active_to = ceil_second(max(active_to, provisioned_at))
        if active_to - active_from < timedelta(seconds=MINIMUM_INSTANCE_SECONDS):
            billed = MINIMUM_INSTANCE_SECONDS if start <= provisioned_at < end else 0
        else:
            billed = max(int((min(active_to, end) - max(active_from, start)).total_seconds()), 0)
        if billed:
            seconds[account_id][instance_type] += billed
    return {account_id: dict(by_type) for account_id, by_type in seconds.items()}
