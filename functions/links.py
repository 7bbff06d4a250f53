"""Signed, expiring links to download a function's code (the invoice PDF links' scheme, ``elbia.links``).

A link names the function and the code's sha256: it downloads exactly the archive it was made for,
while the function exists, for ``ELBIA_CODE_LINK_SECONDS``.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from elbia.errors import Conflict
from elbia.links import SignedLink
from functions.models import FunctionStatus

CODE_LINK = SignedLink(salt="functions.code", url_name="functions:code", lifetime_setting="ELBIA_CODE_LINK_SECONDS")


def function_code_url(function, request=None) -> str | None:
    """An absolute signed link to ``function``'s current code archive (``None`` while it has no code)."""
    if not function.code_sha256:
        return None
    return CODE_LINK.url(f"{function.public_id}:{function.code_sha256}", request)


def function_code_from_token(token: str) -> tuple[str, str]:
    """The function public id and code sha256 a link was signed for; ``LinkExpired`` or ``LinkInvalid`` otherwise."""
    public_id, _, sha256 = CODE_LINK.value(token).partition(":")
    return public_id, sha256


@dataclass(frozen=True)
class CodeLink:
    """A signed download link to one archive of a function, and until when it works."""

    url: str
    expires_at: datetime
    code_sha256: str
    code_size: int


def function_code_link(function, request=None) -> CodeLink:
    """A fresh signed link to ``function``'s current code; ``Conflict`` when it has none to download.

    A function without code (.NET or Go before an upload) or deleted has no archive to offer (a deleted
    function's links open nothing either).
    """
    if function.status == FunctionStatus.DELETED:
        raise Conflict(f"Function {function.public_id} is deleted; its code can no longer be downloaded.")
    if not function.code_sha256:
        raise Conflict(
            f"Function {function.public_id} has no code yet: upload a ZIP archive with PUT /v1/functions/"
            f"{function.public_id}/code."
        )
    now = timezone.now()
    return CodeLink(
        url=function_code_url(function, request),
        expires_at=now + timedelta(seconds=settings.ELBIA_CODE_LINK_SECONDS),
        code_sha256=function.code_sha256,
        code_size=function.code_size,
    )
