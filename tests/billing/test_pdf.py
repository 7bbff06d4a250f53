"""Invoice PDFs: real documents, rendered once and stored, behind signed links that expire."""

import time
from io import BytesIO
from unittest import mock

import pytest
from django.core.files.storage import default_storage
from pypdf import PdfReader

from billing import pdf
from billing.links import invoice_pdf_link_path
from billing.models import Invoice
from billing.services import invoice_generate_for_month, invoice_mark_paid, invoice_render_pdf, invoice_void
from billing.tasks import render_invoice_pdfs
from tests.billing.march import MARCH

pytestmark = pytest.mark.django_db


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(BytesIO(content)).pages)


def download(client, url: str):
    response = client.get(url)
    return response, b"".join(response.streaming_content) if response.status_code == 200 else b""


@pytest.fixture
def invoice(account, march_usage):
    account.name = "Acme <Rockets> & Co"
    account.save()
    return invoice_generate_for_month(account=account, month=MARCH)


def pdf_url(api, invoice: Invoice) -> str:
    return api.get(f"/v1/billing/invoices/{invoice.public_id}").json()["pdf_url"]


def test_the_link_downloads_a_real_pdf_without_a_token(api, client, invoice):
    url = pdf_url(api, invoice)
    assert url.startswith("http://testserver/invoices/pdf/INV_")
    response, content = download(client, url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'inline; filename="{invoice.public_id}.pdf"'
    assert content.startswith(b"%PDF-")
    text = pdf_text(content)
    for expected in (
        invoice.public_id,
        "Acme <Rockets> & Co",
        "2024-03",
        "2024-03-31",
        "Function requests",
        "Function duration",
        "Compute instances (t3.micro)",
        "Compute instances (m5.large)",
        "$71.42",
        "Total",
        "$108.07",
        "OPEN",
    ):
        assert expected in text


def test_the_pdf_is_rendered_once_and_stored(api, client, invoice):
    url = pdf_url(api, invoice)
    with mock.patch("billing.services.render_invoice_pdf", wraps=pdf.render_invoice_pdf) as render:
        first = download(client, url)[1]
        second = download(client, url)[1]
    assert render.call_count == 1
    assert first == second
    invoice.refresh_from_db()
    assert invoice.pdf.name.startswith(f"invoices/2024-03/{invoice.public_id}-")
    assert default_storage.exists(invoice.pdf.name)


def test_a_lost_file_is_rendered_again(api, client, invoice):
    url = pdf_url(api, invoice)
    download(client, url)
    invoice.refresh_from_db()
    default_storage.delete(invoice.pdf.name)
    response, content = download(client, url)
    assert response.status_code == 200
    assert invoice.public_id in pdf_text(content)


def test_the_worker_task_renders_it_and_running_it_twice_is_harmless(invoice):
    render_invoice_pdfs([invoice.id])
    invoice.refresh_from_db()
    stored = invoice.pdf.name
    assert stored and invoice.pdf_status == "open"
    render_invoice_pdfs([invoice.id])
    invoice.refresh_from_db()
    assert invoice.pdf.name == stored
    render_invoice_pdfs([123456789])  # a deleted invoice: nothing to do


def test_a_status_change_re_renders(invoice, django_capture_on_commit_callbacks, monkeypatch):
    monkeypatch.setattr(
        render_invoice_pdfs, "apply_async", lambda args, **options: render_invoice_pdfs(*args)
    )  # the worker, here
    render_invoice_pdfs([invoice.id])
    with django_capture_on_commit_callbacks(execute=True):
        invoice_mark_paid(invoice=invoice)
    invoice.refresh_from_db()
    assert "PAID" in pdf_text(invoice.pdf.read())


def test_regenerating_replaces_the_stored_file(invoice, django_capture_on_commit_callbacks):
    invoice_render_pdf(invoice=invoice)
    invoice.refresh_from_db()
    old = invoice.pdf.name
    with django_capture_on_commit_callbacks(execute=True):
        invoice_void(invoice=invoice)
        invoice_render_pdf(invoice=invoice)
    invoice.refresh_from_db()
    assert invoice.pdf.name != old
    assert not default_storage.exists(old)
    assert "VOID" in pdf_text(invoice.pdf.read())


def test_a_tampered_link_is_not_found(client, api, invoice, other_user):
    url = pdf_url(api, invoice)
    signed = url.rsplit("/", 1)[1]
    public_id, timestamp, signature = signed.split(":")
    other = Invoice.objects.create(account=other_user.account, period=MARCH, date=invoice.date, amount_cents=1)
    for forged in (
        f"{other.public_id}:{timestamp}:{signature}",  # another invoice with this signature
        f"{public_id}:{timestamp}:{signature[:-1]}A"
        if signature[-1] != "A"
        else f"{public_id}:{timestamp}:{signature[:-1]}B",
        f"{public_id}:{timestamp}",
        public_id,
        "",
        "x" * 2000,
    ):
        response = client.get(f"/invoices/pdf/{forged}")
        assert response.status_code == 404, forged
        assert response["Content-Type"] != "application/pdf"


def test_an_expired_link_is_gone(client, invoice, settings):
    an_hour_and_a_minute_ago = time.time() - settings.ELBIA_PDF_LINK_SECONDS - 60
    with mock.patch("django.core.signing.time.time", return_value=an_hour_and_a_minute_ago):
        path = invoice_pdf_link_path(invoice.public_id)
    response = client.get(path)
    assert response.status_code == 410
    assert b"expired" in response.content


def test_a_link_within_its_lifetime_works(client, invoice, settings):
    almost_an_hour_ago = time.time() - settings.ELBIA_PDF_LINK_SECONDS + 60
    with mock.patch("django.core.signing.time.time", return_value=almost_an_hour_ago):
        path = invoice_pdf_link_path(invoice.public_id)
    assert client.get(path).status_code == 200


def test_a_link_to_an_invoice_that_is_gone(client, account):
    assert client.get(invoice_pdf_link_path("INV_0000000000")).status_code == 404


def test_only_get_and_head(client, invoice):
    path = invoice_pdf_link_path(invoice.public_id)
    assert client.post(path).status_code == 405
    assert client.head(path).status_code == 200
