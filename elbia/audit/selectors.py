"""Reads of the audit trail; every queryset starts from the account."""

from elbia.accounts.models import Account
from elbia.audit.models import AuditEvent


def audit_trail(*, account: Account, object_id: str, limit: int) -> list[AuditEvent]:
    """The latest ``limit`` audit events of one of the account's objects (by its public ID), newest first: one query."""
    return list(
        AuditEvent.objects.for_account(account).filter(object_id=object_id).order_by("-created_at", "-id")[:limit]
    )
