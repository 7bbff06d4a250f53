"""Daily usage rollups, kept exact in the same transaction as the rows they summarize.

Functions: ``FunctionUsageDay`` holds, per account, function and UTC day, the executions, the
MB-milliseconds (``duration_ms * memory_mb``, exact integers) and the billed milliseconds of the
usage events actually stored. Ingestion adds what its ``INSERT ... ON CONFLICT DO NOTHING``
really inserted (a resent event adds nothing); ``UsageEvent``'s own writes (``save``, ``delete``,
the queryset's bulk writes) add or recompute the days they touch.

Compute: a compute resource is billed for its *active span*, from ``provisioned_at`` to the first
of ``deleting_started_at``, ``deleted_at`` and ``failed_at`` at or after it (still open: to now);
each started second counts, and a span shorter than ``MINIMUM_INSTANCE_SECONDS`` is billed that
minimum, in the month (here: on the day) it began. The state:

- ``ComputeUsageDay`` (account, instance type, day, seconds): every day of each closed span, and
  the days before ``MeteringClose.through`` (a UTC midnight) of each open span that began at least
  a minute before it ("metered" open spans);
- ``OpenComputeSpans`` (account, instance type, spans): how many metered open spans there are;
  each adds the seconds from ``through`` to now;
- ``OpenComputeSpan``: each open span not metered yet (few: those begun since the last close).

A resource's lifecycle writes (provisioned, deleting, deleted, failed, retried, removed) move its
contribution from the old span to the new one (``compute_span_saved``), under a shared advisory
lock; the daily close (``metering_close``, a Celery beat task) takes it exclusively and moves
``through`` to the last midnight. So the month's instance-seconds are a sum over at most 31 days
and instance types, plus one multiplication and a handful of fresh spans, whatever the number of
resources. ``expected_*`` recompute all of it from the raw rows (``reconcile_usage``).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, ExpressionWrapper, F, Sum
from django.db.models.functions import Cast, TruncDate

MINIMUM_INSTANCE_SECONDS = 60
# Megabyte-milliseconds of one execution, computed in 64 bits (two 32-bit columns would overflow).
MB_MS = ExpressionWrapper(Cast(F("duration_ms"), BigIntegerField()) * F("memory_mb"), output_field=BigIntegerField())
DAY = timedelta(days=1)
SPAN_FIELDS = ("provisioned_at", "deleting_started_at", "deleted_at", "failed_at")
# Advisory lock: "mtr" namespace; transitions hold it shared, the daily close exclusively.
_LOCK_NAMESPACE = 0x6D7472
_LOCK_KEY = 1


# --- functions --------------------------------------------------------------------------------


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _quoted(model, *names: str) -> tuple[str, list[str]]:
    q = connection.ops.quote_name
    return q(model._meta.db_table), [q(model._meta.get_field(name).column) for name in names]


def _upsert_increments(model, keys: tuple[str, ...], values: tuple[str, ...], types: tuple[str, ...], rows) -> None:
    """``INSERT ... ON CONFLICT (keys) DO UPDATE SET value = value + EXCLUDED.value`` for every row, in key order.

    Rows are sorted so that concurrent writers lock the rollup rows in one order (no deadlock).
    PostgreSQL gets one array per column (a constant statement); other databases a VALUES list.
    """
    rows = sorted(rows)
    if not rows:
        return
    table, columns = _quoted(model, *keys, *values)
    key_columns, value_columns = columns[: len(keys)], columns[len(keys) :]
    update = ", ".join(f"{column} = {table}.{column} + EXCLUDED.{column}" for column in value_columns)
    conflict = f"ON CONFLICT ({', '.join(key_columns)}) DO UPDATE SET {update}"
    if connection.vendor == "postgresql":
        arrays = ", ".join(f"%s::{kind}[]" for kind in types)
        sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) {conflict}"  # noqa: S608
        params = [list(column) for column in zip(*rows, strict=True)]
    else:
        row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row_sql] * len(rows))} {conflict}"  # noqa: S608
        params = [value for row in rows for value in row]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def add_function_usage(rows: Iterable[tuple]) -> None:
    """Add stored events (``event_row`` tuples) to their days' rollups: one statement."""
    from billing.models import FunctionUsageDay

    totals: dict[tuple[int, date, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for account_id, function_id, timestamp, duration_ms, memory_mb in rows:
        total = totals[account_id, utc_day(timestamp), function_id]
        total[0] += 1
        total[1] += duration_ms * memory_mb
        total[2] += duration_ms
    _upsert_increments(
        FunctionUsageDay,
        ("account", "day", "function"),
        ("executions", "mb_ms", "duration_ms"),
        ("bigint", "date", "bigint", "bigint", "bigint", "bigint"),
        [(*key, *total) for key, total in totals.items()],
    )


def function_days_from_events(events) -> list[tuple]:
    """(account id, day, function id, executions, mb_ms, duration_ms) of a queryset of events, grouped in SQL."""
    grouped = (
        events.order_by()
        .annotate(day=TruncDate("timestamp", tzinfo=UTC))
        .values("account_id", "day", "function_id")
        .annotate(executions=Count("id"), mb_ms=Sum(MB_MS), duration=Sum("duration_ms"))
        .values_list("account_id", "day", "function_id", "executions", "mb_ms", "duration")
    )
    return [(a, d, f, n, int(mb or 0), int(ms or 0)) for a, d, f, n, mb, ms in grouped]


def _day_range(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + DAY


def refresh_function_days(days: set[tuple[int, date]]) -> None:
    """Recompute the rollups of some (account, day) pairs from the stored events."""
    from billing.models import FunctionUsageDay, UsageEvent

    by_account: dict[int, set[date]] = defaultdict(set)
    for account_id, day in days:
        by_account[account_id].add(day)
    for account_id, account_days in by_account.items():
        FunctionUsageDay.objects.filter(account_id=account_id, day__in=account_days).delete()
        events = UsageEvent.objects.none()
        for day in account_days:
            start, end = _day_range(day)
            events |= UsageEvent.objects.filter(account_id=account_id, timestamp__gte=start, timestamp__lt=end)
        FunctionUsageDay.objects.bulk_create(
            FunctionUsageDay(account_id=a, day=d, function_id=f, executions=n, mb_ms=mb, duration_ms=ms)
            for a, d, f, n, mb, ms in function_days_from_events(events)
        )


# --- compute spans ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A compute resource's active span: from ``provisioned_at`` to ``stop`` (``None``: still open)."""

    account_id: int
    instance_type: str
    provisioned_at: datetime
    stop: datetime | None


def span_of(*, account_id, type, instance_type, provisioned_at, deleting_started_at, deleted_at, failed_at):
    """The active span of a resource's lifecycle fields, or ``None`` (not a compute instance, never active)."""
    if type != "compute" or provisioned_at is None:
        return None
    stops = [
        stop for stop in (deleting_started_at, deleted_at, failed_at) if stop is not None and stop >= provisioned_at
    ]
    return Span(account_id, instance_type, provisioned_at, min(stops) if stops else None)


def floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def ceil_second(moment: datetime) -> datetime:
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def midnight(moment: datetime) -> datetime:
    return datetime.combine(utc_day(moment), time.min, tzinfo=UTC)


def is_metered(span: Span, through: datetime | None) -> bool:
    """Whether an open span is in the rollups up to ``through`` (it began at least a minute before it)."""
    return (
        span.stop is None
        and through is not None
        and (through - floor_second(span.provisioned_at)).total_seconds() >= MINIMUM_INSTANCE_SECONDS
    )


SECONDS_PER_DAY = 86_400
Days = tuple[dict[date, int], tuple[date, date] | None]  # partial days, and the range [first, last) of whole days


def _split(start: datetime, end: datetime) -> Days:
    """The whole seconds of ``[start, end)`` (whole-second bounds) per UTC day, whole days as a range."""
    if start >= end:
        return {}, None
    if utc_day(start) == utc_day(end - timedelta(microseconds=1)):
        return {utc_day(start): int((end - start).total_seconds())}, None
    partial: dict[date, int] = {}
    first_whole = utc_day(start)
    if start != midnight(start):
        partial[first_whole] = int((midnight(start) + DAY - start).total_seconds())
        first_whole += DAY
    if end != midnight(end):
        partial[utc_day(end)] = int((end - midnight(end)).total_seconds())
    last_whole = utc_day(end)  # exclusive
    return partial, ((first_whole, last_whole) if first_whole < last_whole else None)


def expand(days: Days) -> dict[date, int]:
    partial, whole = days
    result = dict(partial)
    if whole is not None:
        day = whole[0]
        while day < whole[1]:
            result[day] = SECONDS_PER_DAY
            day += DAY
    return result


def split_by_day(start: datetime, end: datetime) -> dict[date, int]:
    """The whole seconds of ``[start, end)`` (whole-second bounds) falling on each UTC day."""
    return expand(_split(start, end))


def span_days_compact(span: Span | None, through: datetime | None) -> Days:
    """What ``ComputeUsageDay`` holds for a span: all its days when closed; before ``through`` when metered."""
    if span is None:
        return {}, None
    start = floor_second(span.provisioned_at)
    if span.stop is not None:
        end = ceil_second(max(span.stop, span.provisioned_at))
        if (end - start).total_seconds() < MINIMUM_INSTANCE_SECONDS:
            return {utc_day(span.provisioned_at): MINIMUM_INSTANCE_SECONDS}, None
        return _split(start, end)
    return _split(start, through) if is_metered(span, through) else ({}, None)


def span_days(span: Span | None, through: datetime | None) -> dict[date, int]:
    return expand(span_days_compact(span, through))


def open_span_seconds(span: Span, *, start: datetime, end: datetime, now: datetime) -> int:
    """Billed seconds of a not yet metered open span within ``[start, end)`` at ``now``."""
    active_from = floor_second(span.provisioned_at)
    active_to = ceil_second(max(now, span.provisioned_at))
    if (active_to - active_from).total_seconds() < MINIMUM_INSTANCE_SECONDS:
        return MINIMUM_INSTANCE_SECONDS if start <= span.provisioned_at < end else 0
    return max(int((min(active_to, end) - max(active_from, start)).total_seconds()), 0)


def metered_open_seconds(spans: int, *, through: datetime, start: datetime, end: datetime, now: datetime) -> int:
    """Billed seconds of ``spans`` metered open spans within ``[start, end)``: each from ``through`` to now."""
    active_to = min(ceil_second(now), end)
    return spans * max(int((active_to - max(through, start)).total_seconds()), 0)


def _lock(*, shared: bool) -> datetime | None:
    """Take the metering lock for this transaction and read ``through``: one statement on PostgreSQL."""
    from billing.models import MeteringClose

    table, columns = _quoted(MeteringClose, "through")
    if connection.vendor != "postgresql":
        return MeteringClose.objects.filter(pk=1).values_list("through", flat=True).first()
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {function}(%s, %s), (SELECT {columns[0]} FROM {table} WHERE id = 1)",  # noqa: S608
            [_LOCK_NAMESPACE, _LOCK_KEY],
        )
        return cursor.fetchone()[1]


def _apply_compute_days(deltas: dict[tuple[int, str, date], int]) -> None:
    """Add (positive) and take away (negative) seconds per (account, instance type, day)."""
    from billing.models import ComputeUsageDay

    added = [(account_id, day, kind, seconds) for (account_id, kind, day), seconds in deltas.items() if seconds > 0]
    _upsert_increments(
        ComputeUsageDay,
        ("account", "day", "instance_type"),
        ("seconds",),
        ("bigint", "date", "varchar", "bigint"),
        added,
    )
    for (account_id, kind, day), seconds in sorted(deltas.items()):
        if seconds < 0:
            ComputeUsageDay.objects.filter(account_id=account_id, instance_type=kind, day=day).update(
                seconds=F("seconds") + seconds
            )


def _add_metered_spans(account_id: int, instance_type: str, count: int) -> None:
    from billing.models import OpenComputeSpans

    if count > 0:
        _upsert_increments(
            OpenComputeSpans,
            ("account", "instance_type"),
            ("spans",),
            ("bigint", "varchar", "bigint"),
            [(account_id, instance_type, count)],
        )
    elif count < 0:
        OpenComputeSpans.objects.filter(account_id=account_id, instance_type=instance_type).update(
            spans=F("spans") + count
        )


def compute_span_changed(resource_id: int, old: Span | None, new: Span | None) -> None:
    """Move a resource's contribution from its old active span to its new one (in the caller's transaction)."""
    from billing.models import OpenComputeSpan

    if old == new:
        return
    through = _lock(shared=True)
    deltas: dict[tuple[int, str, date], int] = defaultdict(int)
    for span, sign in ((old, -1), (new, 1)):
        if span is None:
            continue
        for day, seconds in span_days(span, through).items():
            deltas[span.account_id, span.instance_type, day] += sign * seconds
    _apply_compute_days({key: value for key, value in deltas.items() if value})
    if old is not None and old.stop is None:
        if is_metered(old, through):
            _add_metered_spans(old.account_id, old.instance_type, -1)
        else:
            OpenComputeSpan.objects.filter(resource_id=resource_id).delete()
    if new is not None and new.stop is None:
        if is_metered(new, through):
            _add_metered_spans(new.account_id, new.instance_type, 1)
        else:
            _remember_fresh_span(resource_id, new)


def _remember_fresh_span(resource_id: int, span: Span) -> None:
    """Insert or replace the resource's fresh open span: one statement (``INSERT ... ON CONFLICT DO UPDATE``)."""
    from billing.models import OpenComputeSpan

    table, columns = _quoted(OpenComputeSpan, "resource_id", "account", "instance_type", "provisioned_at")
    updates = ", ".join(f"{column} = EXCLUDED.{column}" for column in columns[1:])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES (%s, %s, %s, %s) "  # noqa: S608
            f"ON CONFLICT ({columns[0]}) DO UPDATE SET {updates}",
            [
                resource_id,
                span.account_id,
                span.instance_type,
                OpenComputeSpan._meta.get_field("provisioned_at").get_db_prep_value(span.provisioned_at, connection),
            ],
        )


@dataclass(frozen=True)
class CloseResult:
    """What a daily close did: the midnight it metered up to, and the fresh spans it took in."""

    through: datetime | None
    metered_spans: int = 0
    days: int = 0


@transaction.atomic
def metering_close(*, now: datetime | None = None) -> CloseResult:
    """Meter every open span up to the last UTC midnight (at least a minute after it began); idempotent.

    Runs under the exclusive metering lock, so no lifecycle write is half-counted meanwhile.
    """
    from django.utils import timezone

    from billing.models import MeteringClose, OpenComputeSpan, OpenComputeSpans

    target = midnight(now or timezone.now())
    _lock(shared=False)
    close, _ = MeteringClose.objects.select_for_update().get_or_create(pk=1)
    through = close.through
    if through is not None and through >= target:
        return CloseResult(through=through)
    deltas: dict[tuple[int, str, date], int] = defaultdict(int)
    if through is not None:
        days = split_by_day(through, target)
        for account_id, kind, spans in OpenComputeSpans.objects.filter(spans__gt=0).values_list(
            "account_id", "instance_type", "spans"
        ):
            for day, seconds in days.items():
                deltas[account_id, kind, day] += spans * seconds
    fresh = OpenComputeSpan.objects.order_by("id")
    taken, counts = [], defaultdict(int)
    for row_id, account_id, kind, provisioned_at in fresh.values_list(
        "id", "account_id", "instance_type", "provisioned_at"
    ):
        span = Span(account_id, kind, provisioned_at, None)
        if not is_metered(span, target):
            continue
        for day, seconds in split_by_day(floor_second(provisioned_at), target).items():
            deltas[account_id, kind, day] += seconds
        counts[account_id, kind] += 1
        taken.append(row_id)
    _apply_compute_days(deltas)
    for (account_id, kind), count in sorted(counts.items()):
        _add_metered_spans(account_id, kind, count)
    OpenComputeSpan.objects.filter(id__in=taken).delete()
    close.through = target
    close.save(update_fields=["through"])
    return CloseResult(through=target, metered_spans=len(taken), days=len({day for _, _, day in deltas}))


def metering_through() -> datetime | None:
    """Up to which midnight open spans are in the daily rollups (``None`` before the first close)."""
    from billing.models import MeteringClose

    return MeteringClose.objects.filter(pk=1).values_list("through", flat=True).first()
