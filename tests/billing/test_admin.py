"""Billing in the admin: invoice actions through the services, a month's invoice run, the price book's history."""

import time
from datetime import UTC, date, datetime

import pytest
from django.utils import timezone

from billing.models import Invoice, Price
from billing.periods import current_month, format_month, previous_month
from billing.selectors import usage_for_month
from billing.tasks import generate_invoices_for_month
from elbia.accounts.models import Account
from elbia.audit.models import AuditEvent
from tests.admin_actions import messages_of, run_action, staff_events
from tests.factories import FunctionFactory, InvoiceFactory, PriceFactory, UsageEventFactory

pytestmark = pytest.mark.django_db

LIST = "billing/invoice"
GENERATE = "/admin/billing/invoice/generate/"


@pytest.fixture
def invoice(account):
    return InvoiceFactory(account=account)


class TestInvoiceActions:
    def test_mark_paid(self, staff_client, invoice):
        response = run_action(staff_client, LIST, "mark_paid", [invoice])
        invoice.refresh_from_db()
        assert invoice.status == "paid"
        assert invoice.paid_at is not None
        event = staff_events("invoice.mark_paid").get()
        assert (event.object_id, event.account) == (invoice.public_id, invoice.account)
        again = run_action(staff_client, LIST, "mark_paid", [invoice])
        assert any("nothing to do for 1" in message for message in messages_of(again))
        assert staff_events("invoice.mark_paid").count() == 1
        assert response.status_code == 200

    def test_void_asks_first_then_voids(self, staff_client, invoice):
        page = run_action(staff_client, LIST, "void", [invoice]).content.decode()
        assert "Are you sure?" in page
        assert "This cannot be undone" in page
        invoice.refresh_from_db()
        assert invoice.status == "open"
        run_action(staff_client, LIST, "void", [invoice], confirmed=True)
        invoice.refresh_from_db()
        assert invoice.status == "void"
        assert invoice.voided_at is not None
        assert staff_events("invoice.void").get().object_id == invoice.public_id

    def test_a_paid_invoice_cannot_be_voided_nor_a_void_one_paid(self, staff_client, account):
        paid = InvoiceFactory(account=account, status="paid", paid_at=timezone.now())
        void = InvoiceFactory(account=account, period=date(2024, 2, 1), date=date(2024, 2, 29), status="void")
        refused = messages_of(run_action(staff_client, LIST, "void", [paid], confirmed=True))
        assert any("A paid invoice cannot be voided." in message for message in refused)
        refused = messages_of(run_action(staff_client, LIST, "mark_paid", [void]))
        assert any("A void invoice cannot be paid." in message for message in refused)
        paid.refresh_from_db()
        void.refresh_from_db()
        assert (paid.status, void.status) == ("paid", "void")
        assert not AuditEvent.objects.exists()

    def test_regenerate_the_pdf(self, staff_client, invoice):
        run_action(staff_client, LIST, "render_pdf", [invoice])
        invoice.refresh_from_db()
        assert invoice.pdf.name.startswith(f"invoices/2024-03/{invoice.public_id}-")
        assert invoice.pdf.read(5) == b"%PDF-"
        assert invoice.pdf_status == "open"
        first = invoice.pdf.name
        run_action(staff_client, LIST, "render_pdf", [invoice])
        invoice.refresh_from_db()
        assert invoice.pdf.name != first
        assert staff_events("invoice.render_pdf").count() == 2

    def test_the_invoice_page_shows_its_lines_and_amount_read_only(self, staff_client, invoice):
        page = staff_client.get(f"/admin/{LIST}/{invoice.pk}/change/").content.decode()
        assert "$12.34 USD" in page
        assert "Function requests" in page  # its line
        assert "2024-03" in page
        assert "/invoices/" in page  # the signed PDF link
        assert 'name="_save"' not in page
        response = staff_client.post(f"/admin/{LIST}/{invoice.pk}/change/", {"amount_cents": 1, "status": "paid"})
        assert response.status_code == 403
        invoice.refresh_from_db()
        assert (invoice.amount_cents, invoice.status) == (1234, "open")

    def test_the_list_filters_by_period(self, staff_client, account, other_user):
        march = InvoiceFactory(account=account, period=previous_month(current_month()), date=date(2024, 3, 31))
        older = InvoiceFactory(account=other_user.account)
        page = staff_client.get(f"/admin/{LIST}/", {"period": format_month(march.period)}).content.decode()
        assert march.public_id in page
        assert older.public_id not in page
        assert staff_client.get(f"/admin/{LIST}/", {"period": "2024-13"})["Location"].endswith("?e=1")


class TestGenerateForAMonth:
    def test_the_form_proposes_last_month_and_says_what_will_happen(self, staff_client):
        page = staff_client.get(GENERATE).content.decode()
        assert f'value="{format_month(previous_month(current_month()))}"' in page
        assert "creates nothing twice" in page
        assert GENERATE in staff_client.get(f"/admin/{LIST}/").content.decode()

    @pytest.mark.parametrize(
        ("month", "error"),
        [
            ("2024-13", "Expected a month as YYYY-MM from 2000-01, e.g. 2025-01."),
            ("", "This field is required."),
            ("1999-12", "from 2000-01"),
            ("2024-1\x00", "Null characters are not allowed."),
            (format_month(current_month()), "is not over yet"),
            ("2999-01", "is not over yet"),
        ],
    )
    def test_refuses_a_month_that_is_not_closed_or_not_a_month(self, staff_client, month, error, monkeypatch):
        queued = []
        monkeypatch.setattr(generate_invoices_for_month, "delay", queued.append)
        response = staff_client.post(GENERATE, {"month": month})
        assert response.status_code == 200
        assert error in response.content.decode()
        assert queued == []
        assert not AuditEvent.objects.exists()

    def test_queues_the_run_and_records_it(self, staff_client, staff_user, monkeypatch):
        queued = []
        monkeypatch.setattr(generate_invoices_for_month, "delay", queued.append)
        response = staff_client.post(GENERATE, {"month": "2024-03"}, follow=True)
        assert queued == ["2024-03"]
        assert response.redirect_chain[-1][0] == f"/admin/{LIST}/?period=2024-03"
        assert any("Invoice generation for 2024-03 is queued" in message for message in messages_of(response))
        event = staff_events("invoice.generate_month").get()
        assert (event.object_id, event.object_type, event.actor_user) == ("2024-03", "invoice", staff_user)

    def test_a_broker_outage_is_reported_and_nothing_recorded(self, staff_client, monkeypatch):
        def down(month):
            raise ConnectionError("broker unreachable")

        monkeypatch.setattr(generate_invoices_for_month, "delay", down)
        response = staff_client.post(GENERATE, {"month": "2024-03"})
        assert response.status_code == 200
        assert "Could not queue the invoice run (ConnectionError)" in response.content.decode()
        assert not AuditEvent.objects.exists()

    def test_support_may_not_run_it(self, group_client):
        support = group_client("support")
        assert support.get(GENERATE).status_code == 403
        assert support.post(GENERATE, {"month": "2024-03"}).status_code == 403
        assert GENERATE not in support.get(f"/admin/{LIST}/").content.decode()
        assert group_client("operator").get(GENERATE).status_code == 200

    @pytest.mark.slow
    def test_a_worker_creates_the_missing_invoices_of_the_month(self, celery_worker, staff_client, prices):
        long_ago = datetime(2024, 1, 1, tzinfo=UTC)
        billed, new, invoiced = (Account.objects.create(name=name) for name in ("billed", "new", "invoiced"))
        Account.objects.filter(name__in=["billed", "invoiced"]).update(created_at=long_ago)
        UsageEventFactory.create_batch(
            100, function=FunctionFactory(account=billed), timestamp=datetime(2024, 3, 9, tzinfo=UTC)
        )
        existing = InvoiceFactory(account=invoiced, amount_cents=999)

        response = staff_client.post(GENERATE, {"month": "2024-03"})
        assert response.status_code == 302
        deadline = time.monotonic() + 30
        while not Invoice.objects.filter(account=billed).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        invoice = Invoice.objects.get(account=billed)
        assert (invoice.period, invoice.status) == (date(2024, 3, 1), "open")
        assert invoice.amount_cents == usage_for_month(account=billed, month=date(2024, 3, 1)).cost_cents > 0
        assert not Invoice.objects.filter(account=new).exists()  # created after March
        assert Invoice.objects.get(account=invoiced).amount_cents == existing.amount_cents == 999
        assert staff_events("invoice.generate_month").get().object_id == "2024-03"


class TestPriceBook:
    def test_a_future_price_is_added_changed_and_withdrawn_with_audit_records(self, staff_client):
        next_year = date(current_month().year + 1, 1, 1)
        response = staff_client.post(
            "/admin/billing/price/add/",
            {
                "kind": "request",
                "instance_type": "",
                "unit_price": "0.25",
                "currency": "USD",
                "effective_from": next_year,
            },
        )
        assert response.status_code == 302
        price = Price.objects.get(effective_from=next_year)
        created = staff_events("price.create").get()
        assert created.object_id == str(price.pk)
        assert {"kind", "unit_price", "effective_from"} <= set(created.changed_fields)

        response = staff_client.post(
            f"/admin/billing/price/{price.pk}/change/",
            {
                "kind": "request",
                "instance_type": "",
                "unit_price": "0.30",
                "currency": "USD",
                "effective_from": next_year,
            },
        )
        assert response.status_code == 302
        assert staff_events("price.update").get().changed_fields == ["unit_price"]

        assert staff_client.post(f"/admin/billing/price/{price.pk}/delete/", {"post": "yes"}).status_code == 302
        assert not Price.objects.filter(pk=price.pk).exists()
        assert staff_events("price.delete").get().object_id == str(price.pk)

    def test_a_price_in_force_is_history(self, staff_client):
        price = PriceFactory(effective_from=date(2024, 1, 1))
        page = staff_client.get(f"/admin/billing/price/{price.pk}/change/").content.decode()
        assert 'name="_save"' not in page
        edit = {"kind": "request", "unit_price": "9", "currency": "USD", "effective_from": "2024-01-01"}
        assert staff_client.post(f"/admin/billing/price/{price.pk}/change/", edit).status_code == 403
        assert staff_client.post(f"/admin/billing/price/{price.pk}/delete/", {"post": "yes"}).status_code == 403
        price.refresh_from_db()
        assert str(price.unit_price) == "0.2000000000"

    def test_saving_without_a_change_records_nothing(self, staff_client):
        price = PriceFactory(effective_from=date(current_month().year + 1, 1, 1))
        data = {
            "kind": "request",
            "instance_type": "",
            "unit_price": price.unit_price,
            "currency": "USD",
            "effective_from": price.effective_from,
        }
        assert staff_client.post(f"/admin/billing/price/{price.pk}/change/", data).status_code == 302
        assert not AuditEvent.objects.exists()


class TestUsageEvents:
    def test_read_only_and_searchable_by_event_id_within_an_account(self, staff_client, account):
        event = UsageEventFactory(function__account=account, event_id="exec-42")
        UsageEventFactory(event_id="exec-43")
        assert staff_client.get("/admin/billing/usageevent/add/").status_code == 403
        page = staff_client.get(f"/admin/billing/usageevent/{event.pk}/change/").content.decode()
        assert 'name="_save"' not in page
        assert event.function.public_id in page
        found = staff_client.get("/admin/billing/usageevent/", {"account": account.pk, "q": "exec-42"})
        assert "exec-42<" in found.content.decode()
        other = staff_client.get("/admin/billing/usageevent/", {"account": account.pk, "q": "exec-43"})
        assert "exec-43<" not in other.content.decode()
