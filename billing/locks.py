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
# A volatile function in the target list runs after ORDER BY: the locks are taken in the order given.
_LOCK_SQL = "SELECT {}(%s, key) FROM unnest(%s::integer[]) WITH ORDINALITY AS keys(key, n) ORDER BY n"
_SQL = {
    True: _LOCK_SQL.format("pg_advisory_xact_lock_shared"),
    False: _LOCK_SQL.format("pg_advisory_xact_lock"),
}


def lock_account_billing(account_id: int, *, shared: bool) -> None:
    """Take the account's billing lock until the current transaction ends."""
    lock_accounts_billing([account_id], shared=shared)


def lock_accounts_billing(account_ids: list[int], *, shared: bool) -> None:
    """Take several accounts' billing locks in one statement, in the order given (sort it: no deadlocks)."""
    if connection.vendor != "postgresql" or not account_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_SQL[shared], [_NAMESPACE, [account_id % _INT4 for account_id in account_ids]])
