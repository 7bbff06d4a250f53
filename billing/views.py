"""Billing pages: the dashboard's usage and invoices (namespace ``billing``), and the signed invoice PDF links."""

from datetime import date

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from billing.filtersets import InvoiceFilterSet
from billing.links import LinkExpired, LinkInvalid, invoice_pdf_url, invoice_public_id_from_token
from billing.models import Invoice
from billing.periods import (
    EARLIEST_YEAR,
    FutureMonth,
    current_month,
    format_month,
    next_month,
    parse_past_month,
    previous_month,
)
from billing.selectors import PriceMissing, invoice_list, usage_daily, usage_for_month
from billing.services import invoice_ensure_pdf, invoice_render_pdf
from elbia.api.ids import is_public_id
from elbia.pages import dashboard_page, list_page

# How many months back the usage page's month list reaches (earlier months stay reachable with "Previous").
MONTH_CHOICES = 24


def _requested_month(request) -> tuple[date | None, str | None]:
    """The ``?month=YYYY-MM`` asked for (default: this month, UTC) and an error message; checked as /v1/usage does."""
    raw = request.GET.get("month")
    today = current_month()
    try:
        return (today if raw is None else parse_past_month(raw)), None
    except FutureMonth as exc:
        return None, f"{exc}: choose {format_month(today)} or an earlier month."
    except ValueError:
        return None, f"The month must be written YYYY-MM, from {EARLIEST_YEAR}-01 (for example {format_month(today)})."


def _month_choices(account, month: date | None) -> list[date]:
    """Months for the picker, newest first: back to the account's first month, at most ``MONTH_CHOICES``."""
    today = current_month()
    first = max(current_month(account.created_at), date(EARLIEST_YEAR, 1, 1))
    choices, cursor = [], today
    while cursor >= first and len(choices) < MONTH_CHOICES:
        choices.append(cursor)
        cursor = previous_month(cursor)
    if month is not None and month not in choices:
        choices.append(month)
    return choices


@dashboard_page
def usage_page(request):
    """The month's usage and cost exactly as ``GET /v1/usage`` shows them, with a chart of each day's usage."""
    month, error = _requested_month(request)
    today = current_month()
    context = {
        "section": "usage",
        "month": month,
        "current": today,
        "months": _month_choices(request.account, month),
        "error": error,
    }
    if error:
        return render(request, "billing/usage.html", context, status=400)
    context.update(
        previous=previous_month(month) if month > date(EARLIEST_YEAR, 1, 1) else None,
        next=next_month(month) if month < today else None,
        days=usage_daily(account=request.account, month=month),
    )
    try:
        context["usage"] = usage_for_month(account=request.account, month=month)
    except PriceMissing as exc:
        context["pricing_unavailable"] = str(exc)
        return render(request, "billing/usage.html", context, status=503)
    return render(request, "billing/usage.html", context)


@dashboard_page
def invoice_list_page(request):
    """The account's invoices, newest month first, 50 per page, each with a signed link to its PDF."""
    response = list_page(
        request,
        filterset_class=InvoiceFilterSet,
        queryset=invoice_list(account=request.account),
        template="billing/invoices.html",
        section="invoices",
        context={"link_minutes": max(int(settings.ELBIA_PDF_LINK_SECONDS // 60), 1)},
    )
    return response


@dashboard_page
def invoice_page(request, public_id: str):
    """One invoice of the account with its lines, as the API and the PDF show them; anyone else's is a 404."""
    if not is_public_id(public_id, Invoice.PUBLIC_ID_PREFIX):
        raise Http404("No such invoice.")
    invoice = get_object_or_404(invoice_list(account=request.account), public_id=public_id)
    context = {
        "section": "invoices",
        "invoice": invoice,
        "lines": invoice.lines.all(),
        "pdf_url": invoice_pdf_url(invoice.public_id, request=request),
    }
    return render(request, "billing/invoice.html", context)


@require_safe
def invoice_pdf(request, token: str):
    """Serve the stored PDF of the invoice the link was signed for: 404 if altered, 410 once expired."""
    try:
        public_id = invoice_public_id_from_token(token)
    except LinkInvalid:
        raise Http404("No such invoice.") from None
    except LinkExpired:
        return HttpResponse(
            "This invoice link has expired. Ask the API for a new one.\n", status=410, content_type="text/plain"
        )
    invoice = Invoice.objects.filter(public_id=public_id).first()
    if invoice is None:
        raise Http404("No such invoice.")
    if not invoice.pdf_is_current:  # its rendering task has not run yet: render it once, now
        invoice = invoice_ensure_pdf(invoice_id=invoice.id)
    try:
        document = invoice.pdf.open("rb")
    except FileNotFoundError:  # the stored file was lost (storage restored from an older backup): render again
        invoice = invoice_render_pdf(invoice=invoice)
        document = invoice.pdf.open("rb")
    response = FileResponse(document, content_type="application/pdf", as_attachment=False, filename=f"{public_id}.pdf")
    response["Cache-Control"] = "private, max-age=300"
    return response
