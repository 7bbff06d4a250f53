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


@dataclass(frozen=True)
class AllowedHost:
    """One ``ALLOWED_HOSTS`` entry: the host as Django matches it, and the ports it may be reached on."""

    host: str
    ports: frozenset[str] | None  # None: any port

    def allows_port(self, port: str) -> bool:
        return self.ports is None or port in self.ports


#: The ports a host listed without one may be named with: none (the scheme's default), 80 and 443.
DEFAULT_PORTS = frozenset({"", "80", "443"})


def parse_allowed_hosts(text: str) -> list[AllowedHost]:
    """Parse ``api.example.com,.example.org,api.example.com:8443,localhost:*`` (comma-separated).

    A host as Django's ``ALLOWED_HOSTS`` takes it (``.example.org`` matches its subdomains, ``*`` any host),
    optionally followed by ``:PORT`` (that port too) or ``:*`` (any port); without one, only the default
    ports (none, 80, 443). IPv6 addresses are written in brackets: ``[::1]:*``.
    """
    entries: dict[str, set[str] | None] = {}
    for raw in (part.strip().lower() for part in text.split(",")):
        if not raw:
            continue
        host, port = raw, ""
        if raw.startswith("["):
            host, _, rest = raw.partition("]")
            host += "]"
            if rest and not rest.startswith(":"):
                raise ValueError(f"{raw!r}: expected [IPv6] or [IPv6]:PORT")
            port = rest[1:]
        elif raw.count(":") == 1:
            host, port = raw.split(":")
        if not host or any(char in host for char in "/ @"):
            raise ValueError(f"{raw!r} is not a host name")
        if port and port != "*" and not (port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"{raw!r}: the port must be a number from 1 to 65535, or *")
        ports = entries.setdefault(host, set(DEFAULT_PORTS))
        if port == "*" or ports is None:
            entries[host] = None
        elif port:
            ports.add(port)
    if not entries:
        raise ValueError("expected one or more hosts, comma-separated")
    return [AllowedHost(host, None if ports is None else frozenset(ports)) for host, ports in entries.items()]


def code_storage(*, bucket: str, directory, endpoint_url: str | None = None) -> dict:
    """The ``STORAGES["code"]`` entry: an S3 bucket (django-storages) when ``bucket`` is set, else ``directory``.

    Objects are content-addressed (named by their sha256), so an S3 object is never overwritten with
    different bytes; credentials and region come from the standard AWS variables (boto3 reads them).
    """
    if bucket:
        return {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "endpoint_url": endpoint_url,
                "default_acl": None,
                "querystring_auth": True,
                "file_overwrite": True,
            },
        }
    return {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(directory)}}
