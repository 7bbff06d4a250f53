"""Parsers for configuration values; each raises ``ValueError`` with a readable reason."""

from dataclasses import dataclass

PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Rate:
    """A request budget: ``limit`` requests per ``period`` seconds."""

    limit: int
    period: int

    def __str__(self) -> str:
        name = next((name for name, seconds in PERIODS.items() if seconds == self.period), None)
        return f"{self.limit}/{name}" if name else f"{self.limit}/{self.period}s"


def parse_rate(text: str) -> Rate:
    """Parse ``"5000/hour"``, ``"100/minute"``, ``"10/second"`` or ``"500/day"``."""
    count, _, period = text.strip().partition("/")
    if not count.isdigit() or int(count) < 1 or period not in PERIODS:
        raise ValueError(f"expected N/{'|'.join(PERIODS)} with N >= 1, e.g. 5000/hour")
    return Rate(limit=int(count), period=PERIODS[period])


def parse_seconds(text: str) -> float:
    """Parse a non-negative number of seconds."""
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError("expected a non-negative number of seconds")
    return value


def parse_count(text: str) -> int:
    """Parse a whole number, zero or more."""
    value = int(text)
    if value < 0:
        raise ValueError("expected a whole number, 0 or more")
    return value


def parse_fernet_keys(text: str) -> list[str]:
    """Parse a comma-separated list of Fernet keys (URL-safe base64 of 32 bytes); the first one encrypts."""
    import base64
    import binascii

    keys = [key.strip() for key in text.split(",") if key.strip()]
    if not keys:
        raise ValueError("expected one or more Fernet keys, comma-separated")
    for position, key in enumerate(keys, start=1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
        except (binascii.Error, UnicodeEncodeError):
            valid = False
        if not valid:
            raise ValueError(
                f"key {position} is not a Fernet key (32 bytes, URL-safe base64; make one with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
            )
    return keys


def parse_url(text: str, *, schemes: tuple[str, ...]) -> str:
    """A URL whose scheme is one of ``schemes`` (``redis://...``); ``ValueError`` names the ones allowed."""
    scheme, separator, _ = text.partition("://")
    if not separator or scheme not in schemes:
        raise ValueError(f"expected a URL starting with {' or '.join(f'{name}://' for name in schemes)}")
    return text
