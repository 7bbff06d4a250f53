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
from decimal import Decimal
from functools import partial

from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from billing.models import PriceKind
from billing.money import format_cents
from billing.periods import current_month, format_month, month_bounds, previous_month
from billing.selectors import MeteredUsage, PriceBook, price_usage
from resources.catalog import INSTANCE_TYPES, REGIONS
from resources.tasks import provision_resource

COLUMNS = (
    "id", "public_id", "account_id", "type", "name", "region", "instance_type", "vpc_id", "cidr_block",
    "memory_mb", "tags", "status", "failure_reason", "created_at", "updated_at", "provisioning_started_at",
    "provisioned_at", "failed_at", "deleting_started_at", "deleted_at", "last_execution", "lifecycle_task_id",
    "requeue_count", "provider_id",
)  # fmt: skip
WIDTH = len(COLUMNS)
SELECT_WITH_VPC = (
    "SELECT "
    + ", ".join(f'"resources_resource"."{column}"' for column in COLUMNS)
    + ", "
    + ", ".join(f'T3."{column}"' for column in COLUMNS)
    + ' FROM "resources_resource" LEFT OUTER JOIN "resources_resource" T3 ON ("resources_resource"."vpc_id" = T3."id")'
)
PLAIN_COLUMNS = ", ".join(f'"{column}"' for column in COLUMNS)
ORDER = ' ORDER BY "resources_resource"."created_at" DESC, "resources_resource"."id" DESC'
TOKEN_SQL = (
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
        cursor.execute(TOKEN_SQL, [hashlib.sha256(token.encode()).hexdigest()])
        row = cursor.fetchone()
    if row is None or row[2] <= timezone.now():
        raise Refused(401, "unauthorized", "Authentication required.")
    if scope not in row[1].split():
        raise Refused(403, "forbidden", "Insufficient scope.")
    return row[0], row[3]


def _time(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def _represent(row, vpc_row=None, *, expand_vpc: bool = False) -> dict:
    r = dict(zip(COLUMNS, row, strict=True))
    vpc = None
    if r["vpc_id"] is not None:
        vpc = _represent(vpc_row) if expand_vpc else vpc_row[1]
    if r["type"] == "function":
        memory = f"{r['memory_mb']}MB" if r["memory_mb"] else None
    else:
        kind = INSTANCE_TYPES.get(r["instance_type"])
        memory = f"{kind.memory_mb}MB" if kind else None
    return {
        "id": r["public_id"],
        "type": r["type"],
        "name": r["name"] or None,
        "region": r["region"],
        "status": r["status"],
        "instance_type": r["instance_type"] or None,
        "vpc": vpc,
        "memory": memory,
        "tags": json.loads(r["tags"]) if isinstance(r["tags"], str) else r["tags"],  # Django leaves jsonb as text
        "created_at": _time(r["created_at"]),
        "updated_at": _time(r["updated_at"]),
        "provisioning_started_at": _time(r["provisioning_started_at"]),
        "provisioned_at": _time(r["provisioned_at"]),
        "last_execution": _time(r["last_execution"]),
        "failure_reason": r["failure_reason"] or None,
        "provider_id": r["provider_id"] or None,
    }


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
    if not (1 <= limit <= 200 and offset >= 0):
        raise Refused(400, "invalid_parameter", "Parameter 'limit' must be an integer from 1 to 200.")
    outer, outer_params = _conditions(request.GET.get("filter"), '"resources_resource".')
    inner, inner_params = _conditions(request.GET.get("filter"), "U0.")
    outer_where = " AND ".join(['"resources_resource"."account_id" = %s', *outer])
    inner_where = " AND ".join(['U0."account_id" = %s', *inner])
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT COUNT(*) AS "__count" FROM "resources_resource" WHERE ({outer_where})',
            [account_id, *outer_params],
        )
        count = cursor.fetchone()[0]
        rows = []
        if offset < count:
            cursor.execute(
                f'{SELECT_WITH_VPC} WHERE ({outer_where} AND "resources_resource"."id" IN '
                f'(SELECT U0."id" AS "pk" FROM "resources_resource" U0 WHERE ({inner_where}) '
                f'ORDER BY U0."created_at" DESC, U0."id" DESC LIMIT %s OFFSET %s)){ORDER}',
                [account_id, *outer_params, account_id, *inner_params, limit, offset],
            )
            rows = cursor.fetchall()
    data = [_represent(row[:WIDTH], row[WIDTH:]) for row in rows]
    base = request.build_absolute_uri(request.path)
    links = [f'<{base}?limit={limit}>; rel="first"']
    if offset + limit < count:
        links.append(f'<{base}?limit={limit}&offset={offset + limit}>; rel="next"')
    return _json(data, headers={"X-Total-Count": str(count), "Link": ", ".join(links)})


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
    data = _represent((resource_id, *row[1:]), vpc)
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
        return _json(_represent(row[:WIDTH], row[WIDTH:], expand_vpc=request.GET.get("expand") == "vpc"))
    except Refused as refused:
        return _error(refused)


def usage(request):
    """``GET`` the current month's usage: the product's four statements, then its pricing."""
    try:
        account_id, _ = _authenticate(request, "billing:read")
    except Refused as refused:
        return _error(refused)
    now = timezone.now()
    month = current_month()
    start, end = month_bounds(month)
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT "kind", "instance_type", "unit_price" FROM "billing_price" WHERE ("currency" = %s '
            'AND "effective_from" <= %s) ORDER BY 1 ASC, 2 ASC, "effective_from" DESC',
            ["USD", month],
        )
        latest: dict = {}
        for kind, instance_type, unit_price in cursor.fetchall():
            latest.setdefault((kind, instance_type), unit_price)
        cursor.execute(
            'SELECT "account_id", COUNT("id") AS "executions", SUM(("duration_ms")::bigint * "memory_mb") AS "mb_ms" '
            'FROM "billing_usageevent" WHERE ("account_id" IN (%s) AND "timestamp" >= %s AND "timestamp" < %s) '
            "GROUP BY 1",
            [account_id, start, end],
        )
        events = cursor.fetchone() or (account_id, 0, 0)
        cursor.execute(
            'SELECT "account_id", "instance_type", "provisioned_at", "deleting_started_at", "deleted_at", "failed_at" '
            'FROM "resources_resource" WHERE ("account_id" IN (%s) AND "provisioned_at" IS NOT NULL '
            'AND "provisioned_at" < %s AND "type" = %s AND ("deleted_at" IS NULL OR "deleted_at" >= %s)) '
            'ORDER BY "created_at" DESC, "id" DESC',
            [account_id, end, "compute", start],
        )
        # In chunks of 100 rows, as the ORM's iteration fetches them (GET_ITERATOR_CHUNK_SIZE).
        seconds = _instance_seconds(
            (row for chunk in iter(lambda: cursor.fetchmany(100), []) for row in chunk), start, end, now
        )
    prices = PriceBook(
        month=month,
        request=latest.get((PriceKind.REQUEST, "")),
        gb_second=latest.get((PriceKind.GB_SECOND, "")),
        instance_hour={key[1]: value for key, value in latest.items() if key[0] == PriceKind.INSTANCE_HOUR},
    )
    metered = MeteredUsage(executions=events[1], mb_ms=int(events[2] or 0), instance_seconds=seconds)
    priced = price_usage(metered, month=month, prices=prices)
    return _json(
        {
            "period": format_month(month),
            "total_executions": priced.total_executions,
            "gigabytes_hour": f"{priced.gigabyte_hours:,.1f} GBh",
            "gigabyte_hours": round(float(priced.gigabyte_hours), 6),
            "current_month_cost": format_cents(priced.cost_cents),
            "cost_cents": priced.cost_cents,
            "currency": priced.currency,
            "breakdown": [
                {
                    "kind": line.kind,
                    "instance_type": line.instance_type or None,
                    "description": line.description,
                    "quantity": _decimal(line.quantity),
                    "unit": line.unit,
                    "unit_price": _decimal(line.unit_price),
                    "price_unit": line.price_unit,
                    "amount_cents": line.amount_cents,
                    "amount": format_cents(line.amount_cents),
                }
                for line in priced.lines
            ],
        }
    )


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _instance_seconds(rows, start: datetime, end: datetime, now: datetime) -> dict[str, int]:
    """Billed seconds per instance type (the product's rule: each started second, a minute at least)."""
    seconds: dict[str, int] = {}
    for _, instance_type, provisioned_at, *stops in rows:
        active_from = provisioned_at.replace(microsecond=0)
        active_to = min([stop for stop in stops if stop is not None and stop >= provisioned_at] + [now])
        active_to = max(active_to, provisioned_at)
        if active_to.microsecond:
            active_to = active_to.replace(microsecond=0) + timedelta(seconds=1)
        if active_to - active_from < timedelta(seconds=60):
            billed = 60 if start <= provisioned_at < end else 0
        else:
            billed = max(int((min(active_to, end) - max(active_from, start)).total_seconds()), 0)
        if billed:
            seconds[instance_type] = seconds.get(instance_type, 0) + billed
    return seconds


FUNCTION_COLUMNS = (
    "id", "public_id", "account_id", "resource_id", "name", "runtime", "handler", "memory_mb", "timeout_s", "region",
    "tags", "environment", "status", "failure_reason", "created_at", "updated_at", "deployment_started",
    "deployed_at", "failed_at", "deprecated_at", "deleted_at", "last_executed", "lifecycle_task_id", "requeue_count",
    "provider_id",
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
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT COUNT(*) AS "__count" FROM "functions_function" WHERE ({_tagged(FUNCTIONS_TABLE)})',
            where,
        )
        count = cursor.fetchone()[0]
        rows = []
        if offset < count:
            cursor.execute(
                f"{SELECT_FUNCTIONS} WHERE ({_tagged(FUNCTIONS_TABLE)} AND "
                f'"functions_function"."id" IN (SELECT V0."id" AS "pk" FROM "functions_function" V0 WHERE '
                f'({_tagged("V0")}) ORDER BY V0."created_at" DESC, V0."id" DESC LIMIT %s OFFSET %s)) '
                'ORDER BY "functions_function"."created_at" DESC, "functions_function"."id" DESC',
                [*where, *where, limit, offset],
            )
            rows = cursor.fetchall()
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
                "provider_id": f["provider_id"] or None,
                "created_at": _time(f["created_at"]),
                "deployment_started": _time(f["deployment_started"]),
                "deployed_at": _time(f["deployed_at"]),
                "last_executed": _time(f["last_executed"]),
                "failure_reason": f["failure_reason"] or None,
            }
        )
    base = request.build_absolute_uri(request.path)
    links = [f'<{base}?limit={limit}&tag={tag}>; rel="first"']
    if offset + limit < count:
        links.append(f'<{base}?limit={limit}&offset={offset + limit}&tag={tag}>; rel="next"')
    return _json(data, headers={"X-Total-Count": str(count), "Link": ", ".join(links)})


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
                'ON CONFLICT ("account_id", "event_id") DO NOTHING RETURNING "id"',
                [list(column) for column in zip(*rows.values(), strict=True)],
            )
            accepted = len(cursor.fetchall())
            ids = list(last)
            case = "CASE " + " ".join(['WHEN f."id" = %s THEN %s'] * len(ids)) + " ELSE NULL END"
            pairs = [value for pk in ids for value in (pk, last[pk])]
            cursor.execute(
                f'UPDATE "functions_function" f SET "last_executed" = GREATEST(COALESCE(f."last_executed", {case}), '
                f'{case}) WHERE (f."account_id" = %s AND f."id" = ANY(%s))',
                [*pairs, *pairs, account_id, ids],
            )
            function_latest = (
                '(SELECT U0."last_executed" FROM "functions_function" U0 WHERE U0."resource_id" = r."id" LIMIT 1)'
            )
            cursor.execute(
                f'UPDATE "resources_resource" r SET "last_execution" = GREATEST(COALESCE(r."last_execution", '
                f'{function_latest}), {function_latest}) WHERE (r."account_id" = %s AND r."id" IN '
                '(SELECT "resource_id" FROM "functions_function" WHERE "id" = ANY(%s)))',
                [account_id, ids],
            )
        return _json({"accepted": accepted, "duplicates": len(parsed) - accepted})
    except Refused as refused:
        return _error(refused)
