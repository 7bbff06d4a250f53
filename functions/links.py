"""Signed, expiring links to download a function's code (the invoice PDF links' scheme, ``elbia.links``).

A link names the function and the code's sha256: it downloads exactly the archive it was made for,
while the function exists, for ``ELBIA_CODE_LINK_SECONDS``.
"""

from elbia.links import SignedLink

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
