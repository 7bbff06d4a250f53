"""The invoice PDF download: a plain Django view behind a signed, expiring link (no bearer token)."""

from django.http import FileResponse, Http404, HttpResponse
from django.views.decorators.http import require_safe

from billing.links import LinkExpired, LinkInvalid, invoice_public_id_from_token
from billing.models import Invoice
from billing.services import invoice_ensure_pdf, invoice_render_pdf


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
