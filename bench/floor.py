"""The floor: minimal Django views that send the product's SQL and return the product's JSON.

Each view is a plain Django function view: one indexed token lookup (by the token's SHA-256, as the
product's authentication does), the SQL statements the product's endpoint sends (copied from its query
log for one request; see docs/bench.md), and ``json.dumps`` of the same object. No DRF, no serializers,
no filter compiler, no throttling, no idempotency layer. What the product does beyond SQL and is part
of the endpoint's job stays: pricing arithmetic (the product's pure ``price_usage``), the audit row and
the Celery message of a creation.

Only the parameters the benchmark sends are supported (validation is the minimum to answer the
same thing for the same good input); the floor is served by the benchmark's gunicorn alone
(``bench/floor_urls.py``, ``bench/settings.py``), never by the product.
"""

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import urlencode

from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from bench.shapes import (
    AFTER,
    COLUMNS,
    ORDER,
    SELECT_WITH_VPC,
    WIDTH,
    decode_cursor,
    encode_cursor,
    instance_seconds,
    price_book,
    represent,
    rfc3339,
    usage_body,
    usage_statements,
)
from billing.periods import current_month, parse_month, previous_month
from resources.catalog import INSTANCE_TYPES, REGIONS
from resources.tasks import provision_resource

PLAIN_COLUMNS = ", ".join(f'"{column}"' for column in COLUMNS)
# The floor's own token lookup: one indexed query by the checksum (the product's cache of validated
# tokens is left out; its one-join lookup is shapes.TOKEN_SQL).
FLOOR_TOKEN_SQL = (
    'SELECT u."account_id", t."scope", t."expires", u."id" FROM "oauth2_provider_accesstoken" t '
    'JOIN "accounts_user" u ON t."user_id" = u."id" '
    'WHERE t."token_checksum" = %s AND u."is_active" AND u."account_id" IS NOT NULL LIMIT 1'
)
CLOCK_SKEW = timedelta(minutes=5)


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message


def _json(data, status: int = 200, headers: dict | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(data, separators=(",", ":")), status=status, content_type="application/json; charset=utf-8"
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _error(refused: Refused) -> HttpResponse:
    return _json(
        {"error": {"status": refused.status, "code": refused.code, "message": refused.message}}, refused.status
    )


def _authenticate(request, scope: str) -> tuple[int, int]:
    """(account id, user id) of the bearer token: one indexed lookup by its checksum."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Refused(401, "unauthorized", "Authentication required.")
    with connection.cursor() as cursor:
        cursor.execute(FLOOR_TOKEN_SQL, [hashlib.sha256(token.encode()).hexdigest()])
        row = cursor.fetchone()
    if row is None or row[2] <= timezone.now():
        raise Refused(401, "unauthorized", "Authentication required.")
    if scope not in row[1].split():
        raise Refused(403, "forbidden", "Insufficient scope.")
    return row[0], row[3]


def _conditions(raw_filter: str | None, prefix: str) -> tuple[list[str], list]:
    """The WHERE conditions of the product's compiled JSON filter, for the shapes the benchmark sends."""
    where, params, names_status = [], [], False
    for key, condition in (json.loads(raw_filter) if raw_filter else {}).items():
        if key.startswith("tags."):
            tag = key[5:]
            where.append(f'{prefix}"tags" ? %s AND ({prefix}"tags" ->> %s) = %s')
            params += [tag, tag, condition]
            continue
        names_status |= key == "status"
        operator, value = next(iter(condition.items())) if isinstance(condition, dict) else ("$eq", condition)
        if operator == "$in":
            where.append(f'{prefix}"{key}" IN ({", ".join(["%s"] * len(value))})')
            params += value
        elif operator == "$gte":
            where.append(f'{prefix}"{key}" >= %s')
            params.append(datetime.fromisoformat(value))
        else:
            where.append(f'{prefix}"{key}" = %s')
            params.append(value)
    if not names_status:
        where.insert(0, f'NOT ({prefix}"status" = %s)')
        params.insert(0, "deleted")
    return where, params


def _list(request):
    account_id, _ = _authenticate(request, "resources:read")
    limit = int(request.GET.get("limit", 50))
    offset = int(request.GET.get("offset", 0))
    cursor_text = request.GET.get("cursor")
    if not (1 <= limit <= 200 and offset >= 0):
        raise Refused(400, "invalid_parameter", "Parameter 'limit' must be an integer from 1 to 200.")
    raw_filter = request.GET.get("filter")
    outer, outer_params = _conditions(raw_filter, '"resources_resource".')
    outer_where = " AND ".join(['"resources_resource"."account_id" = %s', *outer])
    with connection.cursor() as cursor:
        if offset:  # the product's deferred join: the page's ids from the ordering index, then the rows
            inner, inner_params = _conditions(raw_filter, "U0.")
            inner_where = " AND ".join(['U0."account_id" = %s', *inner])
            cursor.execute(
                f'{SELECT_WITH_VPC} WHERE ({outer_where} AND "resources_resource"."id" IN '
                f'(SELECT U0."id" AS "pk" FROM "resources_resource" U0 WHERE ({inner_where}) '
                f'ORDER BY U0."created_at" DESC, U0."id" DESC LIMIT %s OFFSET %s)){ORDER}',
                [account_id, *outer_params, account_id, *inner_params, limit + 1, offset],
            )
        elif cursor_text is not None:
            created_at, pk = decode_cursor(cursor_text)
            cursor.execute(
                f"{SELECT_WITH_VPC} WHERE ({outer_where} AND {AFTER}){ORDER} LIMIT {limit + 1}",
                [account_id, *outer_params, created_at, created_at, created_at, pk],
            )
        else:
            cursor.execute(
                f"{SELECT_WITH_VPC} WHERE ({outer_where}){ORDER} LIMIT {limit + 1}", [account_id, *outer_params]
            )
        rows = cursor.fetchall()
    has_next = len(rows) > limit
    rows = rows[:limit]
    data = [represent(row[:WIDTH], row[WIDTH:]) for row in rows]
    kept = {"filter": raw_filter} if raw_filter else {}
    last = dict(zip(COLUMNS, rows[-1][:WIDTH], strict=True)) if rows else None
    first = dict(zip(COLUMNS, rows[0][:WIDTH], strict=True)) if rows and cursor_text is not None else None
    links = _links(request, kept, limit, offset, has_next, last, first)
    return _json(data, headers={"Link": links, "Vary": "Prefer"})


def _links(request, kept: dict, limit: int, offset: int, has_next: bool, last: dict | None, first=None) -> str:
    """The product's Link header without a count: first, prev (an offset or a cursor page), next (a cursor)."""
    base = request.build_absolute_uri(request.path)

    def url(**params) -> str:  # DRF's replace_query_param sorts the parameters
        return f"{base}?{urlencode(sorted({**kept, 'limit': limit, **params}.items()))}"

    links = {"first": url()}
    if offset:
        links["prev"] = url(**({"offset": offset - limit} if offset > limit else {}))
    if first is not None:  # a cursor page: prev is the cursor before its first row
        links["prev"] = url(cursor=encode_cursor(first["created_at"], first["id"], backward=True))
    if has_next and last is not None:
        links["next"] = url(cursor=encode_cursor(last["created_at"], last["id"]))
    return ", ".join(f'<{target}>; rel="{rel}"' for rel, target in links.items())


def _create(request):
    account_id, user_id = _authenticate(request, "resources:write")
    try:
        body = json.loads(request.body)
        region, instance_type, vpc_name = body["region"], body["instance_type"], body["vpc"]
        tags = body.get("tags", {})
    except (ValueError, KeyError, TypeError):
        raise Refused(400, "invalid_request", "Invalid request body.") from None
    if region not in REGIONS or instance_type not in INSTANCE_TYPES or not isinstance(tags, dict):
        raise Refused(400, "invalid_request", "Invalid request body.")
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f'SELECT {PLAIN_COLUMNS} FROM "resources_resource" '
            'WHERE ("account_id" = %s AND NOT ("status" = %s) AND "name" = %s AND "region" = %s AND "type" = %s) '
            'ORDER BY "created_at" DESC, "id" DESC LIMIT 1',
            [account_id, "deleted", vpc_name, region, "vpc"],
        )
        vpc = cursor.fetchone()
        if vpc is None:
            raise Refused(400, "invalid_request", f"No VPC {vpc_name!r} in {region}.")
        cursor.execute("SELECT * FROM resources_resource WHERE id = %s FOR SHARE", [vpc[0]])
        for attempt in range(5):  # as the product: a public id drawn again on a (rare) collision, in a savepoint
            public_id = f"RES_{secrets.randbelow(10**10):010d}"
            row = (None, public_id, account_id, "compute", "", region, instance_type, vpc[0], "", None, tags,
                   "pending", "", now, now, now, None, None, None, None, None, "", 0, "")  # fmt: skip
            try:
                with transaction.atomic():
                    cursor.execute(
                        f'INSERT INTO "resources_resource" ({", ".join(COLUMNS[1:])}) '
                        f'VALUES ({", ".join(["%s"] * (WIDTH - 1))}) RETURNING "id"',
                        [*row[1:10], json.dumps(tags), *row[11:]],
                    )
                break
            except IntegrityError:
                if attempt == 4:
                    raise
        resource_id = cursor.fetchone()[0]
        cursor.execute(
            'INSERT INTO "audit_auditevent" ("created_at", "account_id", "actor_type", "actor_user_id", "actor", '
            '"action", "object_type", "object_id", "changed_fields", "ip_address", "request_id") '
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            [now, account_id, "token", user_id, "token", "resource.create", "resource", public_id,
             json.dumps(sorted(body)), request.META.get("REMOTE_ADDR"), getattr(request, "request_id", "")],
        )  # fmt: skip
        transaction.on_commit(partial(provision_resource.delay, resource_id), robust=True)
    data = represent((resource_id, *row[1:]), vpc)
    location = request.build_absolute_uri(f"/v1/resources/{public_id}")
    return _json(data, 201, {"Location": location})


@csrf_exempt
def resources(request):
    """``GET``: a page (``limit``, ``offset``, ``filter``); ``POST``: a compute instance."""
    try:
        return _create(request) if request.method == "POST" else _list(request)
    except Refused as refused:
        return _error(refused)


def resource_detail(request, public_id: str):
    """One resource, ``expand=vpc`` honoured."""
    try:
        account_id, _ = _authenticate(request, "resources:read")
        with connection.cursor() as cursor:
            cursor.execute(
                f'{SELECT_WITH_VPC} WHERE ("resources_resource"."account_id" = %s '
                'AND "resources_resource"."public_id" = %s) LIMIT 21',
                [account_id, public_id],
            )
            row = cursor.fetchone()
        if row is None:
            raise Refused(404, "not_found", "Not found.")
        return _json(represent(row[:WIDTH], row[WIDTH:], expand_vpc=request.GET.get("expand") == "vpc"))
    except Refused as refused:
        return _error(refused)


def usage(request):
    """``GET /v1/usage?month=``: the product's statements over the daily rollups, then its pricing."""
    try:
        account_id, _ = _authenticate(request, "billing:read")
    except Refused as refused:
        return _error(refused)
    now = timezone.now()
    month = parse_month(request.GET["month"]) if "month" in request.GET else current_month()
    statements = usage_statements(account_id, month)
    with connection.cursor() as cursor:
        cursor.execute(*statements["prices"])
        prices = price_book(month, cursor.fetchall())
        cursor.execute(*statements["functions"])
        events = cursor.fetchone() or (account_id, 0, 0)
        cursor.execute(*statements["compute"])
        seconds = instance_seconds(cursor.fetchall(), month=month, now=now)
    return _json(usage_body(month, prices, int(events[1] or 0), int(events[2] or 0), seconds))


FUNCTION_COLUMNS = (
    "id", "public_id", "account_id", "resource_id", "name", "runtime", "handler", "memory_mb", "timeout_s", "region",
    "tags", "environment", "status", "failure_reason", "created_at", "updated_at", "deployment_started",
    "deployed_at", "failed_at", "deprecated_at", "deleted_at", "last_executed", "lifecycle_task_id", "requeue_count",
    "provider_id", "code_sha256", "code_size",
)  # fmt: skip
SELECT_FUNCTIONS = (
    "SELECT "
    + ", ".join(f'"functions_function"."{column}"' for column in FUNCTION_COLUMNS)
    + ", "
    + ", ".join(f'"resources_resource"."{column}"' for column in COLUMNS)
    + ' FROM "functions_function" LEFT OUTER JOIN "resources_resource" '
    'ON ("functions_function"."resource_id" = "resources_resource"."id")'
)


FUNCTIONS_TABLE = '"functions_function"'


def _tagged(table: str) -> str:
    return (
        f'{table}."account_id" = %s AND NOT ({table}."status" = %s) AND EXISTS(SELECT 1 AS "a" FROM '
        f'"functions_functiontag" U0 WHERE (U0."account_id" = %s AND U0."function_id" = ({table}."id") '
        'AND U0."tag" = %s) LIMIT 1)'
    )


def functions(request):
    """``GET`` a page of functions having a tag (``limit``, ``offset``, ``tag``)."""
    try:
        account_id, _ = _authenticate(request, "functions:read")
    except Refused as refused:
        return _error(refused)
    limit, offset, tag = int(request.GET.get("limit", 50)), int(request.GET.get("offset", 0)), request.GET["tag"]
    where = [account_id, "deleted", account_id, tag]
    order = ' ORDER BY "functions_function"."created_at" DESC, "functions_function"."id" DESC'
    with connection.cursor() as cursor:
        if offset:
            cursor.execute(
                f"{SELECT_FUNCTIONS} WHERE ({_tagged(FUNCTIONS_TABLE)} AND "
                f'"functions_function"."id" IN (SELECT V0."id" AS "pk" FROM "functions_function" V0 WHERE '
                f'({_tagged("V0")}) ORDER BY V0."created_at" DESC, V0."id" DESC LIMIT %s OFFSET %s)){order}',
                [*where, *where, limit + 1, offset],
            )
        else:
            cursor.execute(f"{SELECT_FUNCTIONS} WHERE ({_tagged(FUNCTIONS_TABLE)}){order} LIMIT {limit + 1}", where)
        rows = cursor.fetchall()
    has_next = len(rows) > limit
    rows = rows[:limit]
    data = []
    for row in rows:
        f = dict(zip(FUNCTION_COLUMNS, row, strict=False))
        environment = json.loads(f["environment"]) if isinstance(f["environment"], str) else f["environment"]
        data.append(
            {
                "id": f["public_id"],
                "name": f["name"],
                "runtime": f["runtime"],
                "handler": f["handler"],
                "status": f["status"],
                "memory": f"{f['memory_mb']}MB",
                "memory_mb": f["memory_mb"],
                "timeout": f["timeout_s"],
                "region": f["region"],
                "tags": json.loads(f["tags"]) if isinstance(f["tags"], str) else f["tags"],
                "environment": sorted(environment),
                "resource": row[len(FUNCTION_COLUMNS) + 1] if f["resource_id"] is not None else None,
                "code_sha256": f["code_sha256"] or None,
                "code_size": f["code_size"],
                "provider_id": f["provider_id"] or None,
                "created_at": rfc3339(f["created_at"]),
                "deployment_started": rfc3339(f["deployment_started"]),
                "deployed_at": rfc3339(f["deployed_at"]),
                "last_executed": rfc3339(f["last_executed"]),
                "failure_reason": f["failure_reason"] or None,
            }
        )
    last = dict(zip(FUNCTION_COLUMNS, rows[-1], strict=False)) if rows else None
    return _json(data, headers={"Link": _links(request, {"tag": tag}, limit, offset, has_next, last), "Vary": "Prefer"})


@csrf_exempt
def usage_events(request):
    """``POST`` a batch of execution records: the product's seven statements in one transaction."""
    try:
        account_id, _ = _authenticate(request, "usage:write")
        try:
            events = json.loads(request.body)["events"]
            parsed = [
                (e["event_id"], e["function"], datetime.fromisoformat(e["timestamp"]), int(e["duration_ms"]),
                 e.get("memory_mb"))
                for e in events
            ]  # fmt: skip
        except (ValueError, KeyError, TypeError):
            raise Refused(400, "invalid_request", "Invalid request body.") from None
        if not 1 <= len(parsed) <= 1000:
            raise Refused(400, "invalid_request", "Send from 1 to 1,000 events.")
        now = timezone.now()
        earliest = datetime.combine(previous_month(current_month(now)), datetime.min.time(), tzinfo=UTC)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock_shared(%s, key) FROM unnest(%s::integer[]) "
                "WITH ORDINALITY AS keys(key, n) ORDER BY n",
                [0x62696C6C, [account_id % 2**31]],
            )
            cursor.execute(
                'SELECT "public_id", "id", "memory_mb", "created_at" FROM "functions_function" '
                'WHERE ("account_id" = %s AND "public_id" = ANY(%s)) ORDER BY 4 DESC, 2 DESC',
                [account_id, list({event[1] for event in parsed})],
            )
            functions = {public_id: (pk, memory, created) for public_id, pk, memory, created in cursor.fetchall()}
            months = sorted({moment.astimezone(UTC).date().replace(day=1) for _, _, moment, _, _ in parsed})
            cursor.execute(
                'SELECT "period" FROM "billing_invoice" WHERE ("account_id" = %s AND "period" = ANY(%s))',
                [account_id, months],
            )
            invoiced = {row[0] for row in cursor.fetchall()}
            rows, last = {}, {}
            for event_id, function, moment, duration, memory in parsed:
                found = functions.get(function)
                month = moment.astimezone(UTC).date().replace(day=1)
                if found is None or moment > now + CLOCK_SKEW or moment < earliest or month in invoiced:
                    raise Refused(400, "invalid_request", "Invalid event.")
                if event_id not in rows:
                    rows[event_id] = (account_id, found[0], event_id, moment, duration, memory or found[1], now)
                    if found[0] not in last or moment > last[found[0]]:
                        last[found[0]] = moment
            cursor.execute(
                'INSERT INTO "billing_usageevent" ("account_id", "function_id", "event_id", "timestamp", '
                '"duration_ms", "memory_mb", "received_at") SELECT * FROM unnest(%s::bigint[], %s::bigint[], '
                "%s::varchar[], %s::timestamptz[], %s::integer[], %s::integer[], %s::timestamptz[]) "
                'ON CONFLICT ("account_id", "event_id") DO NOTHING RETURNING "event_id"',
                [list(column) for column in zip(*rows.values(), strict=True)],
            )
            inserted = [row[0] for row in cursor.fetchall()]
            accepted = len(inserted)
            totals: dict = {}
            for event_id in inserted:  # the product's daily rollups of the rows inserted (billing.rollups)
                _, function_id, _, moment, duration, memory, _ = rows[event_id]
                key = (account_id, moment.astimezone(UTC).date(), function_id)
                total = totals.setdefault(key, [0, 0, 0])
                total[0] += 1
                total[1] += duration * memory
                total[2] += duration
            upsert = sorted((*key, *total) for key, total in totals.items())
            if upsert:
                cursor.execute(
                    'INSERT INTO "billing_functionusageday" ("account_id", "day", "function_id", "executions", '
                    '"mb_ms", "duration_ms") SELECT * FROM unnest(%s::bigint[], %s::date[], %s::bigint[], '
                    '%s::bigint[], %s::bigint[], %s::bigint[]) ON CONFLICT ("account_id", "day", "function_id") DO '
                    'UPDATE SET "executions" = "billing_functionusageday"."executions" + EXCLUDED."executions", '
                    '"mb_ms" = "billing_functionusageday"."mb_ms" + EXCLUDED."mb_ms", '
                    '"duration_ms" = "billing_functionusageday"."duration_ms" + EXCLUDED."duration_ms"',
                    [list(column) for column in zip(*upsert, strict=True)],
                )
            ids = list(last)
            cursor.execute(
                'UPDATE "functions_function" f SET "last_executed" = GREATEST(f."last_executed", v."moment") '
                'FROM unnest(%s::bigint[], %s::timestamptz[]) AS v("id", "moment") '
                'WHERE f."account_id" = %s AND f."id" = v."id"',
                [ids, [last[pk] for pk in ids], account_id],
            )
            cursor.execute(
                'UPDATE "resources_resource" r SET "last_execution" = GREATEST(r."last_execution", f."last_executed") '
                'FROM "functions_function" f WHERE f."account_id" = %s AND f."id" = ANY(%s) '
                'AND r."id" = f."resource_id" AND r."account_id" = %s',
                [account_id, ids, account_id],
            )
        return _json({"accepted": accepted, "duplicates": len(parsed) - accepted})
    except Refused as refused:
        return _error(refused)
