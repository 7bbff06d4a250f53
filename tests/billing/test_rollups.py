"""The daily usage rollups agree, to the cent, with a recomputation from the raw events and resources.

Property tests (hypothesis) drive random event batches (with resends and in-batch repeats), lifecycle
changes of compute instances and daily closes, then compare the rollups row by row with the raw
rows (``billing.reconcile``), and /v1/usage and the invoice with the raw computation priced the same way.
"""

import threading
from datetime import UTC, datetime, timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.models import ComputeUsageDay, FunctionUsageDay, OpenComputeSpan, UsageEvent
from billing.periods import current_month, month_start, previous_month
from billing.reconcile import metered_usage_from_raw, reconcile
from billing.rollups import metering_close
from billing.selectors import metered_usage, price_book_for_month, price_usage, usage_for_month
from billing.services import UsageEventInput, invoice_generate_for_month, usage_record_events
from resources.models import Resource
from tests.factories import AccountFactory, FunctionFactory, ResourceFactory, UserFactory

NOW = datetime(2025, 3, 10, 12, 0, 30, 250_000, tzinfo=UTC)  # mid-month: last month is still open for events
EARLIEST = datetime(2025, 2, 1, tzinfo=UTC)
SPAN = int((NOW - EARLIEST).total_seconds())
EXAMPLES = settings(
    max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)

moments = st.one_of(
    st.integers(min_value=0, max_value=SPAN - 1).map(lambda s: EARLIEST + timedelta(seconds=s)),
    # around midnights and the turn of the month, where days and months split spans
    st.tuples(st.integers(1, 38), st.integers(-90, 90)).map(
        lambda m: min(max(EARLIEST + timedelta(days=m[0], seconds=m[1]), EARLIEST), NOW - timedelta(seconds=1))
    ),
)
fine_moments = st.tuples(moments, st.integers(0, 999_999)).map(lambda m: m[0].replace(microsecond=m[1]))
events = st.tuples(
    st.integers(0, 11),  # event id from a small pool: resends and repeats
    st.integers(0, 2),  # function
    fine_moments,
    st.integers(1, 900_000),  # duration_ms
    st.sampled_from([None, 128, 3008]),  # memory_mb
)
batches = st.lists(events, min_size=1, max_size=6)
# A compute instance: when it became active, and how its span ends (offset in seconds, or open).
instances = st.tuples(
    st.sampled_from(["t3.micro", "m5.large"]),
    fine_moments,
    st.one_of(  # open; short (billed a minute); across days and months
        st.none(), st.sampled_from([0, 1, 30, 59, 60, 61, 119]), st.integers(0, 40 * 86400)
    ),
    st.sampled_from(["deleting_started_at", "failed_at", "deleted_at"]),
    st.booleans(),  # closed later (a transition after creation) rather than created closed
    st.booleans(),  # the row is removed at the end
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), batches),
        st.tuples(st.just("instance"), instances),
        st.tuples(st.just("close"), moments),
    ),
    max_size=10,
)


def _ingest(account, functions, batch, prefix):
    inputs = [
        UsageEventInput(
            event_id=f"{prefix}-{event_id}",
            function=functions[function].public_id,
            timestamp=timestamp,
            duration_ms=duration,
            memory_mb=memory,
        )
        for event_id, function, timestamp, duration, memory in batch
    ]
    return usage_record_events(account=account, events=inputs, now=NOW)


def _instance(account, spec) -> Resource:
    instance_type, provisioned_at, stop_after, stop_field, later, _ = spec
    stop = None if stop_after is None else min(provisioned_at + timedelta(seconds=stop_after), NOW)
    fields = {"provisioned_at": provisioned_at}
    if stop is not None and not later:
        fields[stop_field] = stop
    resource = ResourceFactory(account=account, instance_type=instance_type, **fields)
    if stop is not None and later:  # a lifecycle transition on the stored row, as the services make them
        resource = Resource.objects.get(pk=resource.pk)
        setattr(resource, stop_field, stop)
        resource.save(update_fields=[stop_field, "updated_at"])
    return resource


def _assert_agrees_with_raw(account, months):
    report = reconcile(account_ids=[account.id])
    assert report.differences == [], report.differences[:5]
    for month in months:
        from_rollups = metered_usage(account_ids=[account.id], month=month, now=NOW)[account.id]
        from_raw = metered_usage_from_raw(account_ids=[account.id], month=month, now=NOW)[account.id]
        assert from_rollups == from_raw, month
        prices = price_book_for_month(month=month)
        assert price_usage(from_rollups, month=month, prices=prices) == price_usage(
            from_raw, month=month, prices=prices
        )


@pytest.mark.django_db
@EXAMPLES
@given(script=operations, prefix=st.integers(0, 10**9))
def test_rollups_follow_batches_resends_lifecycle_changes_and_closes(prices, script, prefix):
    account = AccountFactory()
    functions = [FunctionFactory(account=account, memory_mb=memory, created_at=EARLIEST) for memory in (128, 512, 1769)]
    removed = []
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        for kind, payload in script:
            if kind == "batch":
                _ingest(account, functions, payload, prefix)
            elif kind == "instance":
                resource = _instance(account, payload)
                if payload[-1]:
                    removed.append(resource)
            else:
                metering_close(now=payload)
        for resource in removed:
            Resource.objects.get(pk=resource.pk).delete()
        _assert_agrees_with_raw(account, [previous_month(current_month(NOW)), current_month(NOW)])


@pytest.mark.django_db
@EXAMPLES
@given(batch=batches, repeats=st.integers(1, 3))
def test_a_resent_batch_changes_nothing(prices, batch, repeats):
    account = AccountFactory()
    functions = [FunctionFactory(account=account, memory_mb=memory, created_at=EARLIEST) for memory in (128, 512, 1769)]
    first = _ingest(account, functions, batch, "resend")
    before = list(FunctionUsageDay.objects.filter(account=account).values_list("day", "executions", "mb_ms"))
    for _ in range(repeats):
        again = _ingest(account, functions, batch, "resend")
        assert again.accepted == 0 and again.duplicates == len(batch)
    after = list(FunctionUsageDay.objects.filter(account=account).values_list("day", "executions", "mb_ms"))
    assert sorted(before) == sorted(after)
    assert sum(row[1] for row in after) == first.accepted == UsageEvent.objects.filter(account=account).count()
    _assert_agrees_with_raw(account, [previous_month(current_month(NOW)), current_month(NOW)])


@pytest.mark.django_db
@EXAMPLES
@given(script=st.lists(st.tuples(st.just("instance"), instances), min_size=1, max_size=5), close=moments)
def test_the_invoice_and_v1_usage_agree_with_the_raw_rows(make_client, prices, script, close):
    user = UserFactory()
    account = user.account
    functions = [FunctionFactory(account=account, memory_mb=memory, created_at=EARLIEST) for memory in (128, 512, 1769)]
    month = previous_month(current_month(NOW))
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        _ingest(
            account,
            functions,
            [(n, n % 3, EARLIEST + timedelta(hours=5 * n), 1000 * n + 1, None) for n in range(12)],
            "inv",
        )
        for _, spec in script:
            _instance(account, spec)
        metering_close(now=close)
        raw = metered_usage_from_raw(account_ids=[account.id], month=month, now=NOW)[account.id]
        expected = price_usage(raw, month=month, prices=price_book_for_month(month=month))
        body = make_client(user).get("/v1/usage", {"month": "2025-02"}).json()
        invoice = invoice_generate_for_month(account=account, month=month, now=NOW)
    assert body["cost_cents"] == expected.cost_cents == invoice.amount_cents
    assert body["total_executions"] == raw.executions
    assert [line["amount_cents"] for line in body["breakdown"]] == [line.amount_cents for line in expected.lines]


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_count_every_inserted_event_once(prices):
    account = AccountFactory()
    functions = [FunctionFactory(account=account, memory_mb=memory, created_at=EARLIEST) for memory in (128, 512, 1769)]
    errors = []

    def send(worker: int) -> None:
        try:
            for round_ in range(4):
                # Overlapping ids: each batch resends half of another worker's events.
                batch = [
                    ((worker + n) % 40 + round_ * 10, n % 3, NOW - timedelta(hours=n), 100 + n, None) for n in range(20)
                ]
                _ingest(account, functions, batch, "c")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    stored = UsageEvent.objects.filter(account=account).count()
    assert sum(FunctionUsageDay.objects.filter(account=account).values_list("executions", flat=True)) == stored
    _assert_agrees_with_raw(account, [current_month(NOW)])


@pytest.mark.django_db
def test_the_daily_close_meters_open_spans_and_changes_no_figure(prices):
    account = AccountFactory()
    resource = ResourceFactory(
        account=account, instance_type="t3.micro", provisioned_at=NOW - timedelta(days=3, hours=2)
    )
    assert OpenComputeSpan.objects.filter(resource_id=resource.pk).exists()  # not metered yet: no close ran
    month = month_start(NOW.date())
    before = usage_for_month(account=account, month=month, now=NOW)
    result = metering_close(now=NOW)
    assert result.through == datetime(2025, 3, 10, tzinfo=UTC) and result.metered_spans >= 1
    assert not OpenComputeSpan.objects.filter(resource_id=resource.pk).exists()
    metered = datetime(2025, 3, 10, tzinfo=UTC) - resource.provisioned_at.replace(microsecond=0)
    assert sum(ComputeUsageDay.objects.filter(account=account).values_list("seconds", flat=True)) == int(
        metered.total_seconds()
    )
    assert usage_for_month(account=account, month=month, now=NOW) == before
    assert metering_close(now=NOW).metered_spans == 0  # idempotent
    _assert_agrees_with_raw(account, [month])


@pytest.mark.django_db
def test_reconcile_usage_reports_and_repairs_a_difference(prices):
    account = AccountFactory()
    function = FunctionFactory(account=account, created_at=EARLIEST)
    _ingest(account, [function] * 3, [(1, 0, NOW - timedelta(hours=1), 500, None)], "r")
    ResourceFactory(
        account=account, provisioned_at=NOW - timedelta(days=2), deleting_started_at=NOW - timedelta(days=1)
    )
    out = StringIO()
    call_command("reconcile_usage", "--account", str(account.id), stdout=out)
    assert "0 differences" in out.getvalue()

    FunctionUsageDay.objects.filter(account=account).update(executions=7)
    ComputeUsageDay.objects.filter(account=account).delete()
    out = StringIO()
    with pytest.raises(CommandError, match="--fix"):
        call_command("reconcile_usage", "--account", str(account.id), stdout=out)
    assert "function_days" in out.getvalue() and "compute_days" in out.getvalue()

    out = StringIO()
    call_command("reconcile_usage", "--account", str(account.id), "--fix", stdout=out)
    assert "Repaired 1 accounts." in out.getvalue()
    assert FunctionUsageDay.objects.get(account=account).executions == 1
    out = StringIO()
    call_command("reconcile_usage", "--account", str(account.id), stdout=out)
    assert "0 differences" in out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("seconds", [0, 30, 59, 60, 61, 3600, 86400 * 3])
@pytest.mark.parametrize("later", [False, True])
@pytest.mark.parametrize("start", [NOW - timedelta(days=2), datetime(2025, 2, 28, 23, 59, 30, 500_000, tzinfo=UTC)])
def test_closed_spans_short_and_long(prices, seconds, later, start):
    account = AccountFactory()
    metering_close(now=NOW - timedelta(days=1))
    _instance(account, ("t3.micro", start, seconds, "failed_at", later, False))
    _assert_agrees_with_raw(account, [previous_month(current_month(NOW)), current_month(NOW)])
