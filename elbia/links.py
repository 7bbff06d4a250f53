"""Signed, expiring links: a browser opens them without a bearer token (invoice PDFs, function code).

A ``SignedLink`` signs a value (a public id, with more if the view needs it) into the URL of a named
route; the view turns the token back into the value, or learns that it expired or was forged. Each kind
of link has its own salt, so a token of one kind is worthless for another.
"""

from django.conf import settings
from django.core import signing
from django.urls import reverse


class LinkExpired(Exception):
    """The link was genuine but is older than its kind's lifetime."""


class LinkInvalid(Exception):
    """The link was not signed by us, or was altered."""


class SignedLink:
    """One kind of signed link: its salt, the route it opens (with a ``token`` argument) and its lifetime setting."""

    def __init__(self, *, salt: str, url_name: str, lifetime_setting: str):
        self.salt = salt
        self.url_name = url_name
        self.lifetime_setting = lifetime_setting

    def _signer(self) -> signing.TimestampSigner:
        return signing.TimestampSigner(salt=self.salt)

    def path(self, value: str) -> str:
        """The site-relative path of a freshly signed link for ``value``."""
        return reverse(self.url_name, kwargs={"token": self._signer().sign(value)})

    def url(self, value: str, request=None) -> str:
        """An absolute signed link: from the request's host when there is one, else ``ELBIA_PUBLIC_URL``."""
        path = self.path(value)
        if request is not None:
            return request.build_absolute_uri(path)
        return settings.ELBIA_PUBLIC_URL.rstrip("/") + path

    def value(self, token: str) -> str:
        """The value a link was signed for; ``LinkExpired`` or ``LinkInvalid`` otherwise."""
        try:
            return self._signer().unsign(token, max_age=getattr(settings, self.lifetime_setting))
        except signing.SignatureExpired:
            raise LinkExpired() from None
        except signing.BadSignature:
            raise LinkInvalid() from None
