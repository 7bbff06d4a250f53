"""Signed, expiring links to invoice PDFs (``elbia.links``' scheme, valid ``ELBIA_PDF_LINK_SECONDS``)."""

from elbia.links import LinkExpired, LinkInvalid, SignedLink

__all__ = ["LinkExpired", "LinkInvalid", "invoice_pdf_link_path", "invoice_pdf_url", "invoice_public_id_from_token"]

INVOICE_PDF_LINK = SignedLink(
    salt="billing.invoice-pdf", url_name="billing:invoice-pdf", lifetime_setting="ELBIA_PDF_LINK_SECONDS"
)

#: The site-relative path of a freshly signed link to the invoice's PDF.
invoice_pdf_link_path = INVOICE_PDF_LINK.path
#: An absolute signed link: from the request's host when there is one, else ``ELBIA_PUBLIC_URL``.
invoice_pdf_url = INVOICE_PDF_LINK.url
#: The invoice public id a link was signed for; ``LinkExpired`` or ``LinkInvalid`` otherwise.
invoice_public_id_from_token = INVOICE_PDF_LINK.value
