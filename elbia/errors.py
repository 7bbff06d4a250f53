"""The domain's own errors. Services raise them; they know nothing of HTTP.

Each surface maps them once: the API into its error envelope (``elbia.api.errors``), the admin into a
message (``elbia.admin``), the dashboard into a page message or a form error (``elbia.pages``).
Invalid input is Django's ``ValidationError`` (keyed by field), raised by validators and ``full_clean``.
``str(error)`` is a sentence for the customer; ``code`` names the error for machines.
"""


class DomainError(Exception):
    """A business rule refused the request."""

    code = "error"


class Conflict(DomainError):
    """The request conflicts with the current state: a duplicate name, a VPC in use, already deleting."""

    code = "conflict"


class NotAllowed(DomainError):
    """The actor may not do this (their role, or what the object allows)."""

    code = "permission_denied"


class NotFound(DomainError):
    """The object does not exist for this account (indistinguishable from another account's)."""

    code = "not_found"


class Unavailable(DomainError):
    """Something the request needs is missing for now (prices for a month, a runtime); retrying later may work."""

    code = "unavailable"


class LimitReached(DomainError):
    """Too much at once (a concurrency limit): the same request may succeed after ``retry_after`` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after
