"""Signed, expiring links to invoice PDFs: a browser opens them without a bearer token."""

from django.conf import settings
from django.core import signing
from django.urls import reverse

_SALT = "billing.invoice-pdf"


class LinkExpired(Exception):
    """The link was genuine but is older than ``ELBIA_PDF_LINK_SECONDS``."""


class LinkInvalid(Exception):
    """The link was not signed by us, or was altered."""


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT)


def invoice_pdf_link_path(public_id: str) -> str:
    """The site-relative path of a freshly signed link to the invoice's PDF."""
    return reverse("billing:invoice-pdf", kwargs={"token": _signer().sign(public_id)})


def invoice_pdf_url(public_id: str, request=None) -> str:
    """An absolute signed link: from the request's host when there is one, else ``ELBIA_PUBLIC_URL``."""
    path = invoice_pdf_link_path(public_id)
    if request is not None:
        return request.build_absolute_uri(path)
    return settings.ELBIA_PUBLIC_URL.rstrip("/") + path


def invoice_public_id_from_token(token: str) -> str:
    """The invoice public id a link was signed for; ``LinkExpired`` or ``LinkInvalid`` otherwise."""
    try:
        return _signer().unsign(token, max_age=settings.ELBIA_PDF_LINK_SECONDS)
    except signing.SignatureExpired:
        raise LinkExpired() from None
    except signing.BadSignature:
        raise LinkInvalid() from None
