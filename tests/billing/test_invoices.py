"""Invoices: generated from /v1/usage's computation, one per account and month, listed newest first."""

from datetime import UTC, date, datetime, timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing.models import Invoice, InvoiceLine
from billing.periods import current_month, format_month, month_end, previous_month
from billing.selectors import usage_for_month
from billing.services import (
    invoice_generate_for_month,
    invoice_generate_missing,
    invoice_mark_paid,
    invoice_void,
)
from tests.billing.march import MARCH, TOTAL_CENTS
from tests.factories import AccountFactory, FunctionFactory, UsageEventFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/v1/billing/invoices"


def invoice_for(account, month: date, cents: int = 1000) -> Invoice:
    return Invoice.objects.create(account=account, period=month, date=month_end(month), amount_cents=cents)


class TestGeneration:
    def test_the_invoice_equals_the_months_usage(self, account, march_usage):
        invoice = invoice_generate_for_month(account=account, month=MARCH)
        usage = usage_for_month(account=account, month=MARCH)
        assert invoice.public_id.startswith("INV_")
        assert (invoice.period, invoice.date) == (MARCH, date(2024, 3, 31))
        assert invoice.amount_cents == usage.cost_cents == TOTAL_CENTS
        assert (invoice.amount, invoice.currency, invoice.status) == ("$108.07", "USD", "open")
        lines = list(invoice.lines.all())
        assert [(line.kind, line.instance_type, line.amount_cents) for line in lines] == [
            (line.kind, line.instance_type, line.amount_cents) for line in usage.lines
        ]
        assert [line.quantity for line in lines] == [line.quantity for line in usage.lines]

    def test_generating_again_returns_the_same_invoice(self, account, march_usage):
        first = invoice_generate_for_month(account=account, month=MARCH)
        UsageEventFactory(function__account=account, timestamp=datetime(2024, 3, 9, tzinfo=UTC))
        again = invoice_generate_for_month(account=account, month=MARCH)
        assert again.pk == first.pk
        assert again.amount_cents == TOTAL_CENTS
        assert Invoice.objects.count() == 1
        assert InvoiceLine.objects.count() == 4

    def test_a_month_without_usage_gets_a_settled_zero_invoice(self, account, prices):
        invoice = invoice_generate_for_month(account=account, month=MARCH)
        assert (invoice.amount_cents, invoice.amount, invoice.status) == (0, "$0.00", "paid")
        assert invoice.paid_at is not None
        assert [line.amount_cents for line in invoice.lines.all()] == [0, 0]

    def test_the_current_month_is_not_invoiced(self, account):
        with pytest.raises(ValidationError, match="not over yet"):
            invoice_generate_for_month(account=account, month=current_month())
        assert not Invoice.objects.exists()

    def test_generation_sends_the_pdf_to_a_worker_after_commit(
        self, account, march_usage, django_capture_on_commit_callbacks, monkeypatch
    ):
        queued = []
        monkeypatch.setattr(
            "billing.tasks.render_invoice_pdfs.apply_async", lambda args, **options: queued.append(args)
        )
        with django_capture_on_commit_callbacks(execute=True):
            invoice = invoice_generate_for_month(account=account, month=MARCH)
        assert queued == [[[invoice.id]]]  # the args, as the outbox stored them (JSON)


class TestMissingInvoices:
    @pytest.fixture
    def today(self):
        return date(2025, 4, 2)

    def test_every_closed_month_since_the_account_was_created(self, today, prices):
        old = AccountFactory(created_at=datetime(2020, 5, 5, tzinfo=UTC))
        recent = AccountFactory(created_at=datetime(2025, 1, 20, tzinfo=UTC))
        brand_new = AccountFactory(created_at=datetime(2025, 4, 1, 0, 30, tzinfo=UTC))
        run = invoice_generate_missing(today=today)
        periods = {
            account: sorted(
                format_month(p) for p in Invoice.objects.filter(account=account).values_list("period", flat=True)
            )
            for account in (old, recent, brand_new)
        }
        assert periods[recent] == ["2025-01", "2025-02", "2025-03"]
        assert periods[old] == [format_month(date(2024, m, 1)) for m in range(4, 13)] + [
            "2025-01",
            "2025-02",
            "2025-03",
        ]
        assert periods[brand_new] == []
        assert (run.created, run.existing, run.failed) == (15, 0, 0)

    def test_a_second_run_changes_nothing(self, today, prices):
        AccountFactory.create_batch(3, created_at=datetime(2025, 2, 10, tzinfo=UTC))
        assert invoice_generate_missing(today=today).created == 6
        before = list(Invoice.objects.order_by("id").values_list("id", "public_id", "amount_cents"))
        run = invoice_generate_missing(today=today)
        assert (run.created, run.existing) == (0, 6)
        assert list(Invoice.objects.order_by("id").values_list("id", "public_id", "amount_cents")) == before

    def test_only_what_is_missing_is_created(self, today, prices):
        account = AccountFactory(created_at=datetime(2025, 1, 10, tzinfo=UTC))
        kept = invoice_for(account, date(2025, 2, 1), cents=4242)
        run = invoice_generate_missing(today=today)
        assert (run.created, run.existing) == (2, 1)
        kept.refresh_from_db()
        assert kept.amount_cents == 4242

    def test_small_chunks_reach_every_account(self, today, prices):
        AccountFactory.create_batch(7, created_at=datetime(2025, 3, 1, tzinfo=UTC))
        assert invoice_generate_missing(today=today, chunk_size=2).created == 7

    def test_one_month(self, today, prices):
        AccountFactory(created_at=datetime(2024, 1, 1, tzinfo=UTC))
        AccountFactory(created_at=datetime(2025, 3, 31, tzinfo=UTC))
        AccountFactory(created_at=datetime(2025, 4, 1, tzinfo=UTC))  # after March
        run = invoice_generate_missing(today=today, month=date(2025, 3, 1))
        assert run.created == 2
        assert set(Invoice.objects.values_list("period", flat=True)) == {date(2025, 3, 1)}

    def test_a_month_that_cannot_be_priced_is_left_for_later(self, today, prices):
        account = AccountFactory(created_at=datetime(2025, 3, 1, tzinfo=UTC))
        FunctionFactory(account=account)
        from tests.factories import ResourceFactory

        ResourceFactory(account=account, instance_type="weird.type", provisioned_at=datetime(2025, 3, 2, tzinfo=UTC))
        run = invoice_generate_missing(today=today)
        assert (run.created, run.failed) == (0, 1)
        assert not Invoice.objects.exists()

    def test_the_command(self, prices):
        account = AccountFactory(created_at=timezone.now() - timedelta(days=70))
        out = StringIO()
        call_command("generate_invoices", stdout=out)
        created = Invoice.objects.filter(account=account).count()
        assert created >= 2
        assert f"{created} created, 0 already there, 0 not priced" in out.getvalue()
        out = StringIO()
        month = previous_month(current_month())
        call_command("generate_invoices", "--month", format_month(month), stdout=out)
        assert f"for {format_month(month)}: 0 created, 1 already there" in out.getvalue()

    @pytest.mark.parametrize("month", ["2025-13", "soon", format_month(current_month())])
    def test_the_command_refuses_a_bad_month(self, month):
        with pytest.raises(CommandError):
            call_command("generate_invoices", "--month", month, stdout=StringIO())


class TestStatus:
    def test_mark_paid(self, account):
        invoice = invoice_mark_paid(invoice=invoice_for(account, MARCH))
        assert invoice.status == "paid"
        assert invoice.paid_at is not None
        assert invoice_mark_paid(invoice=invoice).paid_at == invoice.paid_at

    def test_void(self, account):
        invoice = invoice_void(invoice=invoice_for(account, MARCH))
        assert invoice.status == "void"
        assert invoice.voided_at is not None
        with pytest.raises(ValidationError, match="void invoice cannot be paid"):
            invoice_mark_paid(invoice=invoice)

    def test_a_paid_invoice_cannot_be_voided(self, account):
        invoice = invoice_mark_paid(invoice=invoice_for(account, MARCH))
        with pytest.raises(ValidationError, match="paid invoice cannot be voided"):
            invoice_void(invoice=invoice)

    def test_one_invoice_per_account_and_month_in_the_database(self, account):
        from django.db import IntegrityError

        invoice_for(account, MARCH)
        with pytest.raises(IntegrityError):
            invoice_for(account, MARCH)


class TestInvoiceAPI:
    @pytest.fixture
    def invoices(self, account):
        return [invoice_for(account, date(2024, month, 1), cents=100_000 * month + 50) for month in (1, 3, 2)]

    def test_list_newest_first(self, api, invoices, other_user):
        invoice_for(other_user.account, date(2024, 4, 1))
        response = api.get(LIST_URL, HTTP_PREFER="count=exact")
        assert response.status_code == 200
        assert response["X-Total-Count"] == "3"
        body = response.json()
        assert [row["period"] for row in body] == ["2024-03", "2024-02", "2024-01"]
        first = body[0]
        assert set(first) == {"id", "date", "period", "amount", "amount_cents", "currency", "status", "pdf_url"}
        assert first["id"] == invoices[1].public_id
        assert (first["date"], first["amount"], first["amount_cents"]) == ("2024-03-31", "$3,000.50", 300_050)
        assert (first["currency"], first["status"]) == ("USD", "open")
        assert first["pdf_url"].startswith("http://testserver/invoices/pdf/")

    def test_pagination_filter_and_ordering(self, api, invoices):
        response = api.get(LIST_URL, {"limit": 1, "offset": 1})
        assert [row["period"] for row in response.json()] == ["2024-02"]
        assert 'rel="next"' in response["Link"]
        invoice_mark_paid(invoice=invoices[0])
        assert [row["period"] for row in api.get(LIST_URL, {"status": "paid"}).json()] == ["2024-01"]
        assert [row["period"] for row in api.get(LIST_URL, {"ordering": "period"}).json()] == [
            "2024-01",
            "2024-02",
            "2024-03",
        ]

    @pytest.mark.parametrize(
        "query", [{"status": "unpaid"}, {"ordering": "amount"}, {"limit": "0"}, {"offset": "-1"}, {"limit": "x"}]
    )
    def test_bad_parameters(self, api, invoices, query):
        response = api.get(LIST_URL, query)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_parameter"

    def test_list_query_count_is_constant(self, api, account, django_assert_num_queries):
        api.get(LIST_URL)
        for month in range(1, 3):
            invoice_for(account, date(2023, month, 1))
        with django_assert_num_queries(1):  # the page (the token is cached; no count unless asked)
            assert len(api.get(LIST_URL).json()) == 2
        for month in range(3, 13):
            invoice_for(account, date(2023, month, 1))
        with django_assert_num_queries(1):
            assert len(api.get(LIST_URL).json()) == 12

    def test_detail_with_line_items(self, api, account, march_usage):
        invoice = invoice_generate_for_month(account=account, month=MARCH)
        response = api.get(f"{LIST_URL}/{invoice.public_id}")
        assert response.status_code == 200
        body = response.json()
        assert (body["id"], body["period"], body["amount"], body["amount_cents"]) == (
            invoice.public_id,
            "2024-03",
            "$108.07",
            TOTAL_CENTS,
        )
        usage = api.get("/v1/usage", {"month": "2024-03"}).json()
        assert body["lines"] == usage["breakdown"]
        assert sum(line["amount_cents"] for line in body["lines"]) == body["amount_cents"] == usage["cost_cents"]

    def test_detail_query_count(self, api, account, march_usage, django_assert_num_queries):
        invoice = invoice_generate_for_month(account=account, month=MARCH)
        api.get(f"{LIST_URL}/{invoice.public_id}")
        with django_assert_num_queries(2):  # invoice, lines (the token is cached)
            api.get(f"{LIST_URL}/{invoice.public_id}")

    @pytest.mark.parametrize("public_id", ["INV_0000000000", "INV_123", "RES_1234567890", "INV_%00", "x" * 300, "1"])
    def test_unknown_ids(self, api, invoices, public_id):
        response = api.get(f"{LIST_URL}/{public_id}")
        assert response.status_code == 404
        assert response.json()["error"]["message"] == "Resource not available"

    def test_another_accounts_invoice_is_not_found(self, api, other_user):
        foreign = invoice_for(other_user.account, MARCH)
        response = api.get(f"{LIST_URL}/{foreign.public_id}")
        assert response.status_code == 404
        assert response.json()["error"]["message"] == "Resource not available"

    @pytest.mark.parametrize("path", [LIST_URL, f"{LIST_URL}/INV_0000000000"])
    def test_access(self, anonymous_api, make_client, user, path):
        assert anonymous_api.get(path).status_code == 401
        response = make_client(user, scopes=["usage:write", "resources:read"]).get(path)
        assert response.status_code == 403
        assert response.json()["error"]["details"] == {"required_scope": "billing:read"}

    def test_writes_are_not_allowed(self, api, invoices):
        assert api.post(LIST_URL, {}, format="json").status_code == 405
        assert api.delete(f"{LIST_URL}/{invoices[0].public_id}").status_code == 405
