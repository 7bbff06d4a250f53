"""Billing and invocation metrics: usage events accepted and duplicated, invoice runs, invocations."""

import json
import socket
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from billing.models import Price
from billing.tasks import generate_invoices_for_accounts
from elbia.observability import metrics
from functions.runtime.runner import runtime_invoke
from tests.billing.test_job import TODAY, create_accounts, create_prices
from tests.functions.factories import FunctionFactory
from tests.observability.scrape import TOKEN, scrape, value

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.ELBIA_METRICS_TOKEN = TOKEN


def deltas(before, after):
    return lambda name, **labels: value(after, name, **labels) - value(before, name, **labels)


def test_usage_events_accepted_and_duplicated(client, api, account):
    function = FunctionFactory(account=account)
    now = timezone.now()
    events = [
        {"event_id": f"evt-{n}", "function": function.public_id, "timestamp": (now - timedelta(seconds=n)).isoformat(),
         "duration_ms": 100}
        for n in range(3)
    ]  # fmt: skip
    before = scrape(client)

    def post(batch):
        return api.post("/v1/usage/events", data=json.dumps({"events": batch}), content_type="application/json")

    assert post(events).json() == {"accepted": 3, "duplicates": 0}
    assert post(events[:2]).json() == {"accepted": 0, "duplicates": 2}
    assert post([{**events[0], "duration_ms": -1}]).status_code == 400  # refused: counted nowhere
    delta = deltas(before, scrape(client))
    assert delta("elbia_usage_events_total", result="accepted") == 3
    assert delta("elbia_usage_events_total", result="duplicate") == 2


def test_invoice_runs_created_and_failed(client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    Price.objects.all().delete()  # the price book the migrations load
    accounts = create_accounts(2)
    ids = [account.id for account in accounts]
    before = scrape(client)
    generate_invoices_for_accounts.apply(args=[ids, TODAY.isoformat()])  # no price book: only empty months bill
    after_failed = scrape(client)
    delta = deltas(before, after_failed)
    assert delta("elbia_invoices_total", result="created") == 2  # February, without usage, for each account
    assert delta("elbia_invoices_total", result="failed") == 4  # March and April cannot be priced
    assert delta("elbia_invoice_run_duration_seconds_count") == 1
    assert abs(value(after_failed, "elbia_invoice_run_last_finished_timestamp_seconds") - time.time()) < 60

    create_prices()
    generate_invoices_for_accounts.apply(args=[ids, TODAY.isoformat()])
    after = scrape(client)
    delta = deltas(after_failed, after)
    assert delta("elbia_invoices_total", result="created") == 4
    assert delta("elbia_invoices_total", result="failed") == 0
    assert delta("elbia_invoice_run_duration_seconds_count") == 1
    assert value(after, "elbia_invoice_run_last_duration_seconds") > 0


def test_invocations_by_outcome_cold_starts_and_refusals(client, account):
    """The hooks every invocation passes through (runtime_invoke), with the runner's measures."""
    before = scrape(client)
    cold = SimpleNamespace(ok=True, duration_ms=12.0, cold=True, init_duration_ms=80.0)
    warm_error = SimpleNamespace(ok=False, duration_ms=3.0, cold=False, init_duration_ms=None)
    metrics.record_invocation(runtime="Python 3.11", outcome=cold)
    metrics.record_invocation(runtime="Python 3.11", outcome=warm_error)
    metrics.record_invocation_not_run(runtime="Python 3.11", refused=True)
    function = FunctionFactory(account=account, runtime="Python 3.11", handler="app.handler", code_sha256="0" * 64)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(Exception, match="not reachable"):
        runtime_invoke(function, b"{}", "req-1", port=port)
    delta = deltas(before, scrape(client))
    for outcome, count in {"ok": 1, "error": 1, "refused": 1, "unavailable": 1}.items():
        assert delta("elbia_invocations_total", runtime="Python 3.11", outcome=outcome) == count
    assert delta("elbia_invocation_cold_starts_total", runtime="Python 3.11") == 1
    assert delta("elbia_invocation_duration_seconds_count", runtime="Python 3.11") == 2
    assert delta("elbia_invocation_duration_seconds_sum", runtime="Python 3.11") == pytest.approx(0.015)
    assert delta("elbia_invocation_init_duration_seconds_sum", runtime="Python 3.11") == pytest.approx(0.08)
