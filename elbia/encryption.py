"""Secrets at rest: Fernet encryption with the keys of ``settings.ELBIA_SECRETS_KEY``, and a JSON field using it.

``ELBIA_SECRETS_KEY`` is a list of Fernet keys: the first encrypts, every one decrypts (``MultiFernet``),
so a key is rotated by putting the new one first, running ``manage.py reencrypt_environment``, then
dropping the old one.
"""

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


class UndecryptableSecret(Exception):
    """A stored secret that none of the configured keys decrypts (the message never holds the value)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    """The ``MultiFernet`` of the configured keys (rebuilt if the setting changes, e.g. in tests)."""
    return _fernet(tuple(settings.ELBIA_SECRETS_KEY))


def encrypt(value: str) -> str:
    """A Fernet token (ASCII) of ``value``, with the first configured key."""
    return fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """The plaintext of a token made by ``encrypt`` with any of the configured keys."""
    try:
        return fernet().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeEncodeError, AttributeError):
        raise UndecryptableSecret(
            "A stored secret cannot be decrypted: ELBIA_SECRETS_KEY lacks the key it was encrypted with."
        ) from None


def encrypt_values(mapping: dict) -> dict:
    return {name: encrypt(value) for name, value in mapping.items()}


def decrypt_values(mapping: dict) -> dict:
    return {name: decrypt(token) for name, token in mapping.items()}


class EncryptedValuesJSONField(models.JSONField):
    """A JSON object of names to string values, stored with each value encrypted and the names in clear.

    Code sees ``{"NAME": "plaintext"}``; the column holds ``{"NAME": "gAAAAA..."}``. Names stay readable
    (and ``has_key`` lookups work) without a key; lookups on values match nothing, as they should.
    """

    def from_db_value(self, value, expression, connection):
        value = super().from_db_value(value, expression, connection)
        # A key transform (environment__NAME) selects one token, not an object: it stays encrypted.
        return decrypt_values(value) if isinstance(value, dict) else value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt_values(value) if isinstance(value, dict) else value
