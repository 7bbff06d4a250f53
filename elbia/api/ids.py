"""Public IDs: a type prefix and 10 random digits (``RES_0123456789``), never sequential."""

import secrets

from django.db import IntegrityError, models, transaction

DIGITS = 10
ATTEMPTS = 5


def new_public_id(prefix: str) -> str:
    """Return a fresh random public ID with ``prefix`` (e.g. ``"RES_"``)."""
    return f"{prefix}{secrets.randbelow(10**DIGITS):0{DIGITS}d}"


def public_id_pattern(*prefixes: str) -> str:
    """A regular expression matching a public ID with one of ``prefixes`` (for admin searches)."""
    return rf"(?:{'|'.join(prefixes)})\d{{{DIGITS}}}"


def is_public_id(value: str, prefix: str) -> bool:
    """Whether ``value`` has the shape of a public ID with ``prefix``."""
    digits = value[len(prefix) :]
    return value.startswith(prefix) and len(digits) == DIGITS and digits.isascii() and digits.isdigit()


class PublicIdModel(models.Model):
    """A model whose rows carry a unique random public ID, drawn again on the rare collision."""

    PUBLIC_ID_PREFIX = ""

    public_id = models.CharField(max_length=16, unique=True, editable=False)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.public_id or not self._state.adding:
            return super().save(*args, **kwargs)
        for attempt in range(ATTEMPTS):
            self.public_id = new_public_id(self.PUBLIC_ID_PREFIX)
            try:
                with transaction.atomic():
                    return super().save(*args, **kwargs)
            except IntegrityError:
                collided = type(self)._default_manager.filter(public_id=self.public_id).exists()
                if not collided or attempt == ATTEMPTS - 1:
                    self.public_id = ""
                    raise
        return None
