"""The raw floor: the product's SQL and JSON with psycopg 3 and orjson, no Django at all.

A bare WSGI application (``bench/wsgi.py`` mounts it under ``/bench-raw/`` in the benchmark's
gunicorn, beside Django): one psycopg connection per worker process, the product's one-join token
lookup by the token's SHA-256 (``shapes.TOKEN_SQL``), the product's statements for the request
(``bench/shapes.py``) and ``orjson.dumps`` of the same document. It says what the hardware, the
database and the protocol cost for the same work, with no framework above them.

Endpoints: ``resources`` (``limit``, ``cursor``), ``resources/<id>`` (``expand=vpc``), ``usage``
(``month``). Only what the benchmark sends is supported.
"""

import hashlib
import os
from datetime import UTC, datetime
from urllib.parse import parse_qs

import orjson
import psycopg

from bench import shapes
from billing.periods import parse_month

_connection: psycopg.Connection | None = None
STATUS = {200: "200 OK", 400: "400 Bad Request", 401: "401 Unauthorized", 403: "403 Forbidden", 404: "404 Not Found"}


def database_url() -> str:
    return (
        os.environ["BENCH_RAW_DATABASE_URL"] if "BENCH_RAW_DATABASE_URL" in os.environ else os.environ["DATABASE_URL"]
    )


def connection() -> psycopg.Connection:
    """This worker's connection (opened on first use, after gunicorn forked)."""
    global _connection
    if _connection is None or _connection.closed:
        # Client-side binding, as Django's PostgreSQL backend does: the server plans the same statements.
        _connection = psycopg.connect(
            database_url(), autocommit=True, options="-c TimeZone=UTC", cursor_factory=psycopg.ClientCursor
        )
    return _connection


def close() -> None:
    global _connection
    if _connection is not None:
        _connection.close()
        _connection = None


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message


def _authenticate(cursor, environ, scope: str) -> int:
    scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Refused(401, "unauthorized", "Invalid or missing API token")
    row = cursor.execute(shapes.TOKEN_SQL, [hashlib.sha256(token.encode()).hexdigest()]).fetchone()
    if row is None or row[1] <= datetime.now(UTC):
        raise Refused(401, "unauthorized", "Invalid or missing API token")
    if scope not in row[2].split():
        raise Refused(403, "insufficient_scope", f"This endpoint needs the '{scope}' scope.")
    return row[5]


def _base(environ) -> str:
    return f"http://{environ.get('HTTP_HOST', 'localhost')}{environ['PATH_INFO']}"


def _resources(cursor, environ, query) -> tuple[object, dict]:
    account_id = _authenticate(cursor, environ, "resources:read")
    limit = int(query.get("limit", ["50"])[0])
    cursor_text = query.get("cursor", [None])[0]
    sql, params = shapes.list_sql(limit=limit, cursor=cursor_text)
    rows = cursor.execute(sql, [account_id, "deleted", *params]).fetchall()
    has_next = len(rows) > limit
    rows = rows[:limit]
    data = [shapes.represent(row[: shapes.WIDTH], row[shapes.WIDTH :]) for row in rows]
    links = shapes.list_links(_base(environ), limit, rows, has_next, cursor_page=cursor_text is not None)
    return data, {"Link": links, "Vary": "Prefer"}


def _resource(cursor, environ, query, public_id: str) -> tuple[object, dict]:
    account_id = _authenticate(cursor, environ, "resources:read")
    row = cursor.execute(shapes.RETRIEVE_SQL, [account_id, public_id]).fetchone()
    if row is None:
        raise Refused(404, "not_found", "Resource not available")
    expand = query.get("expand", [""])[0] == "vpc"
    return shapes.represent(row[: shapes.WIDTH], row[shapes.WIDTH :], expand_vpc=expand), {}


def _usage(cursor, environ, query) -> tuple[object, dict]:
    account_id = _authenticate(cursor, environ, "billing:read")
    now = datetime.now(UTC)
    month = parse_month(query["month"][0])
    statements = shapes.usage_statements(account_id, month)
    prices = shapes.price_book(month, cursor.execute(*statements["prices"]).fetchall())
    events = cursor.execute(*statements["functions"]).fetchone() or (account_id, 0, 0)
    seconds = shapes.instance_seconds(cursor.execute(*statements["compute"]).fetchall(), month=month, now=now)
    return shapes.usage_body(month, prices, int(events[1] or 0), int(events[2] or 0), seconds), {}


def application(environ, start_response):
    """WSGI: ``/bench-raw/resources``, ``/bench-raw/resources/<id>``, ``/bench-raw/usage``."""
    path = environ["PATH_INFO"].removeprefix("/bench-raw/")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    try:
        with connection().cursor() as cursor:
            if path == "resources":
                data, headers = _resources(cursor, environ, query)
            elif path.startswith("resources/"):
                data, headers = _resource(cursor, environ, query, path.removeprefix("resources/"))
            elif path == "usage":
                data, headers = _usage(cursor, environ, query)
            else:
                raise Refused(404, "not_found", "Resource not available")
        status = 200
    except Refused as refused:
        status, headers = refused.status, {}
        data = {"error": {"status": refused.status, "code": refused.code, "message": refused.message}}
    body = orjson.dumps(data)
    start_response(
        STATUS[status],
        [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(body))), *headers.items()],
    )
    return [body]
