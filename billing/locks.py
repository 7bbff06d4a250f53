"""The per-account billing lock that keeps metering and invoicing of the same account apart.

Recording usage takes it shared (batches of one account still run in parallel); generating an
invoice takes it exclusively. So an invoice never misses events committed for its month, and an
event for an already invoiced month is refused instead of silently changing a closed bill.
PostgreSQL transaction-level advisory locks; on SQLite (single machine) transactions that write
are serialized by the database itself, so nothing is needed.
"""

from django.db import connection

# The first half of the two-integer advisory lock key: "bill" in ASCII, so other locks do not collide.
_NAMESPACE = 0x62696C6C
_INT4 = 2**31


def lock_account_billing(account_id: int, *, shared: bool) -> None:
    """Take the account's billing lock until the current transaction ends."""
    if connection.vendor != "postgresql":
        return
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s, %s)", [_NAMESPACE, account_id % _INT4])
