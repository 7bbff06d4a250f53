"""Django's PostgreSQL backend with a deadline on every wait for the server (``OPTIONS["wait_timeout"]``).

``statement_timeout`` makes a live server cancel a slow statement, and ``connect_timeout`` bounds a new
connection; neither helps when the server (or the network on the way) stops answering an established
connection: the client would wait for ever (the kernel acknowledges what it sends, so TCP timeouts never
fire). psycopg can bound a wait; this backend gives every wait of the connection the deadline
``wait_timeout`` (seconds). Past it the connection is closed (its state is unknown) and the statement
raises ``OperationalError``, which the API answers as 503 ``unavailable`` (docs/faults.md).

After a deadline or a connect timeout, this process does not try to connect again for
``RETRY_SECONDS``: the requests meanwhile fail at once, instead of each waiting for the same timeout.
"""

import logging
import time
import types
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connections
from django.db.backends.postgresql import base

logger = logging.getLogger(__name__)

#: After the database did not answer, new connections are refused at once for this long (this process).
RETRY_SECONDS = 5.0
_unanswered_until = 0.0


def _unanswered() -> None:
    global _unanswered_until
    _unanswered_until = time.monotonic() + RETRY_SECONDS


class DatabaseWrapper(base.DatabaseWrapper):
    """The PostgreSQL backend whose connections never wait for the server longer than ``wait_timeout``."""

    wait_timeout: float | None = None

    def get_connection_params(self) -> dict:
        params = super().get_connection_params()
        self.wait_timeout = params.pop("wait_timeout", None)
        return params

    def get_new_connection(self, conn_params):
        if time.monotonic() < _unanswered_until:
            raise psycopg.OperationalError("The database did not answer a moment ago; not trying again yet.")
        try:
            connection = super().get_new_connection(conn_params)
        except psycopg.errors.ConnectionTimeout:
            _unanswered()
            raise
        if self.wait_timeout:
            connection.elbia_wait_timeout = self.wait_timeout
            connection.wait = types.MethodType(_wait_with_deadline, connection)
        return connection


def _wait_with_deadline(connection, gen, interval=0.1, timeout=None):
    """``psycopg.Connection.wait`` with the connection's deadline unless the caller chose one."""
    deadline = connection.elbia_wait_timeout if timeout is None else timeout
    try:
        return psycopg.Connection.wait(connection, gen, interval=interval, timeout=deadline)
    except psycopg.errors._WaitTimeout:
        logger.warning("The database did not answer within %.1f s; closing the connection.", deadline)
        _unanswered()
        connection.pgconn.finish()
        raise psycopg.OperationalError(f"The database did not answer within {deadline:.1f} seconds.") from None


@contextmanager
def no_statement_deadline(using: str = "default") -> Iterator[None]:
    """Lift the web's deadlines on one connection for work that is long by nature.

    ``statement_timeout`` and the client-side wait deadline protect a request from a hung server; a
    migration that builds an index on a large table, or a reconciliation reading a month of events,
    legitimately takes longer. Inside this block the connection waits as long as the statement takes;
    afterwards both deadlines are back. Other databases than PostgreSQL are left as they are.
    """
    connection = connections[using]
    if not isinstance(connection, DatabaseWrapper):
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    saved = getattr(raw, "elbia_wait_timeout", None)
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
    raw.elbia_wait_timeout = None
    try:
        yield
    finally:
        if not raw.closed:
            raw.elbia_wait_timeout = saved
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")
