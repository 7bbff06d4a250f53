"""The invoice job under concurrency and crashes: exactly one invoice per account and month, always whole."""

import threading
import time
from datetime import UTC, date, datetime

import pytest
from django.db import connection, connections
from django.db.models import Count

from billing.models import Invoice, InvoiceLine, UsageEvent
from billing.periods import current_month, previous_month
from billing.selectors import usage_for_month
from billing.services import UsageEventInput, invoice_generate_for_month, invoice_generate_missing, usage_record_events
from billing.tasks import generate_missing_invoices
from tests.billing.conftest import TEST_PRICES, TEST_PRICES_FROM
from tests.factories import AccountFactory, FunctionFactory, PriceFactory, ResourceFactory, UsageEventFactory

TODAY = date(2024, 5, 2)  # closed months for accounts created in February: 2024-02, 2024-03, 2024-04
MONTHS = [date(2024, 2, 1), date(2024, 3, 1), date(2024, 4, 1)]
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def create_prices():
    for (kind, instance_type), price in TEST_PRICES.items():
        PriceFactory(kind=kind, instance_type=instance_type, unit_price=price, effective_from=TEST_PRICES_FROM)


def create_accounts(count: int) -> list:
    """Accounts created in February 2024, each with different usage in March and April."""
    accounts = []
    for index in range(count):
        account = AccountFactory(created_at=datetime(2024, 2, 15, tzinfo=UTC))
        function = FunctionFactory(account=account, memory_mb=128 * (index % 4 + 1), created_at=LONG_AGO)
        UsageEventFactory.create_batch(
            index + 1, function=function, duration_ms=1000 * (index + 1), timestamp=datetime(2024, 3, 9, tzinfo=UTC)
        )
        UsageEventFactory(function=function, duration_ms=777, timestamp=datetime(2024, 4, 30, 23, 59, tzinfo=UTC))
        if index % 3 == 0:
            ResourceFactory(account=account, instance_type="m5.large", provisioned_at=datetime(2024, 3, 1, tzinfo=UTC))
        accounts.append(account)
    return accounts


def run_in_threads(target, count: int) -> list:
    """Run ``target()`` in ``count`` threads started together, each on its own database connection."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def work(slot: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[slot] = target()
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    return results


def assert_one_whole_invoice_per_account_month(accounts) -> None:
    per_pair = Invoice.objects.values("account_id", "period").annotate(n=Count("id"))
    assert {(row["account_id"], row["period"]): row["n"] for row in per_pair} == {
        (account.id, month): 1 for account in accounts for month in MONTHS
    }
    for invoice in Invoice.objects.select_related("account").prefetch_related("lines"):
        usage = usage_for_month(account=invoice.account, month=invoice.period)
        assert invoice.amount_cents == usage.cost_cents
        assert [line.amount_cents for line in invoice.lines.all()] == [line.amount_cents for line in usage.lines]


@pytest.mark.django_db(transaction=True)
def test_concurrent_and_repeated_runs_create_each_invoice_once():
    create_prices()
    accounts = create_accounts(24)
    runs = run_in_threads(lambda: invoice_generate_missing(today=TODAY, chunk_size=7, batch_size=3), count=4)
    assert sum(run.created for run in runs) == 24 * 3
    assert sum(run.failed for run in runs) == 0
    again = invoice_generate_missing(today=TODAY)
    assert (again.created, again.existing) == (0, 72)
    assert_one_whole_invoice_per_account_month(accounts)
    assert {invoice.amount_cents for invoice in Invoice.objects.filter(period=MONTHS[0])} == {0}
    assert len({invoice.amount_cents for invoice in Invoice.objects.filter(period=MONTHS[1])}) > 10


@pytest.mark.django_db(transaction=True)
def test_concurrent_generation_of_one_invoice():
    create_prices()
    (account,) = create_accounts(1)
    invoices = run_in_threads(lambda: invoice_generate_for_month(account=account, month=MONTHS[1]), count=6)
    assert len({invoice.pk for invoice in invoices}) == 1
    assert InvoiceLine.objects.count() == len(usage_for_month(account=account, month=MONTHS[1]).lines)


@pytest.mark.django_db
def test_a_run_killed_half_way_leaves_whole_invoices_and_the_next_run_finishes(monkeypatch):
    create_prices()
    accounts = create_accounts(6)
    real_bulk_create = InvoiceLine.objects.bulk_create
    calls = []

    def crash_in_the_fourth_transaction(rows, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise SystemExit("worker killed")  # between writing invoices and writing their lines
        return real_bulk_create(rows, *args, **kwargs)

    monkeypatch.setattr(InvoiceLine.objects, "bulk_create", crash_in_the_fourth_transaction)
    with pytest.raises(SystemExit):
        invoice_generate_missing(today=TODAY, batch_size=4)
    assert Invoice.objects.count() == 10  # whole transactions: February's 4 + 2, then March's first 4
    assert not Invoice.objects.filter(lines__isnull=True).exists()  # no invoice without its lines
    monkeypatch.undo()
    run = invoice_generate_missing(today=TODAY, batch_size=4)
    assert (run.created, run.existing) == (18 - 10, 10)
    assert_one_whole_invoice_per_account_month(accounts)


@pytest.mark.django_db(transaction=True)
def test_an_invoice_waits_for_events_being_recorded(monkeypatch):
    """Recording holds the account's billing lock shared; generating takes it exclusively."""
    create_prices()
    account = AccountFactory(created_at=LONG_AGO)
    function = FunctionFactory(account=account, memory_mb=1024, created_at=LONG_AGO)
    month = previous_month(current_month())
    moment = datetime(month.year, month.month, 15, tzinfo=UTC)
    UsageEventFactory(function=function, duration_ms=60_000, timestamp=moment)

    inserted, release = threading.Event(), threading.Event()
    import billing.services

    real_record = billing.services.function_record_executions

    def pause_after_insert(**kwargs):
        inserted.set()
        assert release.wait(timeout=20)
        real_record(**kwargs)

    monkeypatch.setattr(billing.services, "function_record_executions", pause_after_insert)
    events = [
        UsageEventInput(event_id=f"late-{n}", function=function.public_id, timestamp=moment, duration_ms=900_000)
        for n in range(10)
    ]
    outcome = {}

    def record():
        try:
            outcome["recorded"] = usage_record_events(account=account, events=events)
        finally:
            connections.close_all()

    def generate():
        try:
            outcome["invoice"] = invoice_generate_for_month(account=account, month=month)
        finally:
            connections.close_all()

    recorder = threading.Thread(target=record)
    recorder.start()
    assert inserted.wait(timeout=20)  # ten events inserted, not yet committed
    generator = threading.Thread(target=generate)
    generator.start()
    deadline = time.monotonic() + 20
    while not _someone_waits_for_an_advisory_lock():
        assert time.monotonic() < deadline and generator.is_alive()
        time.sleep(0.01)
    release.set()
    recorder.join(timeout=20)
    generator.join(timeout=20)
    assert outcome["recorded"].accepted == 10
    assert UsageEvent.objects.filter(account=account).count() == 11
    assert outcome["invoice"].amount_cents == usage_for_month(account=account, month=month).cost_cents
    assert outcome["invoice"].amount_cents == 9_063  # 11 executions at $0.0025 (2.75 cents), 9,060 GB-s at $0.01


def _someone_waits_for_an_advisory_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0] > 0


@pytest.mark.slow
def test_the_beat_job_through_a_real_worker(celery_worker, media_root):
    create_prices()
    accounts = create_accounts(5)
    generate_missing_invoices.delay(TODAY.isoformat())
    deadline = time.monotonic() + 30
    while Invoice.objects.exclude(pdf="").count() < 15:
        assert time.monotonic() < deadline, "the worker did not create and render the invoices in time"
        time.sleep(0.05)
    assert_one_whole_invoice_per_account_month(accounts)
    assert all(invoice.pdf_status == invoice.status for invoice in Invoice.objects.all())


def test_the_beat_schedule_runs_the_job_early_every_day_utc(settings):
    from elbia.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["generate-missing-invoices"]
    assert entry["task"] == generate_missing_invoices.name
    assert entry["task"] in app.tasks
    schedule = entry["schedule"]
    assert schedule.hour == {1} and schedule.minute == {0} and len(schedule.day_of_month) == 31
    assert settings.CELERY_TIMEZONE == "UTC"
