"""What both floors share, without Django: the product's SQL for the measured requests and its JSON shapes.

``bench/floor.py`` (a plain Django view) and ``bench/raw.py`` (psycopg + orjson, no Django) send these
statements and build these objects, so the two floors differ only in the stack around them. Each
statement is the product's, as its query log shows it for the same request (docs/bench.md).
"""

import base64
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from billing.money import format_cents
from billing.periods import format_month, month_bounds, month_end
from billing.pricing import GB_SECOND, INSTANCE_HOUR, REQUEST, MeteredUsage, PriceBook, Usage, price_usage
from resources.catalog import INSTANCE_TYPES

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
ORDER = ' ORDER BY "resources_resource"."created_at" DESC, "resources_resource"."id" DESC'
LIVE = '"resources_resource"."account_id" = %s AND NOT ("resources_resource"."status" = %s)'
# A keyset page after (created_at, id): the first key's bound is the index range, the rest sorts out ties.
AFTER = (
    '"resources_resource"."created_at" <= %s AND ("resources_resource"."created_at" < %s OR '
    '("resources_resource"."created_at" = %s AND "resources_resource"."id" < %s))'
)
LIST_ORDERING = "-created_at,-id"
RETRIEVE_SQL = (
    f'{SELECT_WITH_VPC} WHERE ("resources_resource"."account_id" = %s AND "resources_resource"."public_id" = %s) '
    "LIMIT 21"
)
# The product's token lookup (elbia/api/authentication.py), when its cache does not have the token.
TOKEN_SQL = (
    'SELECT t."id", t."expires", t."scope", u."id", u."username", a."id", a."name", a."created_at", '
    'r."token_family", k."id", k."name", k."rate_limit", k."last_used_at" FROM "oauth2_provider_accesstoken" t '
    'JOIN "accounts_user" u ON u."id" = t."user_id" AND u."is_active" '
    'JOIN "accounts_account" a ON a."id" = u."account_id" '
    'LEFT JOIN "oauth2_provider_refreshtoken" r ON r."access_token_id" = t."id" '
    'LEFT JOIN "accounts_apitoken" k ON k."token_family" = r."token_family" '
    'WHERE t."token_checksum" = %s'
)

# /v1/usage for a month (billing.selectors.metered_usage and instance_seconds over billing.rollups).
PRICES_SQL = (
    'SELECT "billing_price"."kind", "billing_price"."instance_type", "billing_price"."unit_price" FROM "billing_price" '
    'WHERE ("billing_price"."currency" = %s AND "billing_price"."effective_from" <= %s) '
    'ORDER BY 1 ASC, 2 ASC, "billing_price"."effective_from" DESC'
)
FUNCTION_DAYS_SQL = (
    'SELECT "billing_functionusageday"."account_id", SUM("billing_functionusageday"."executions") AS "executions", '
    'SUM("billing_functionusageday"."mb_ms") AS "mb_ms" FROM "billing_functionusageday" '
    'WHERE ("billing_functionusageday"."account_id" IN (%s) AND "billing_functionusageday"."day" >= %s '
    'AND "billing_functionusageday"."day" <= %s) GROUP BY 1'
)
COMPUTE_SQL = (
    '(SELECT %s AS "row_kind", "billing_computeusageday"."account_id" AS "account_id", '
    '"billing_computeusageday"."instance_type" AS "instance_type", SUM("billing_computeusageday"."seconds") AS '
    '"amount", NULL AS "moment" FROM "billing_computeusageday" WHERE ("billing_computeusageday"."account_id" IN (%s) '
    'AND "billing_computeusageday"."day" >= %s AND "billing_computeusageday"."day" <= %s) GROUP BY 2, 3) UNION ALL '
    '(SELECT %s AS "row_kind", NULL AS "account", %s AS "kind", %s AS "amount", "billing_meteringclose"."through" '
    'AS "moment" FROM "billing_meteringclose" WHERE "billing_meteringclose"."id" = %s) UNION ALL '
    '(SELECT %s AS "row_kind", "billing_opencomputespans"."account_id" AS "account_id", '
    '"billing_opencomputespans"."instance_type" AS "instance_type", "billing_opencomputespans"."spans" AS "amount", '
    'NULL AS "moment" FROM "billing_opencomputespans" WHERE ("billing_opencomputespans"."account_id" IN (%s) AND '
    '"billing_opencomputespans"."spans" > %s)) UNION ALL '
    '(SELECT %s AS "row_kind", "billing_opencomputespan"."account_id" AS "account_id", '
    '"billing_opencomputespan"."instance_type" AS "instance_type", %s AS "amount", '
    '"billing_opencomputespan"."provisioned_at" AS "moment" FROM "billing_opencomputespan" WHERE '
    '("billing_opencomputespan"."account_id" IN (%s) AND "billing_opencomputespan"."provisioned_at" < %s))'
)
MINIMUM_INSTANCE_SECONDS = 60


def rfc3339(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def represent(row, vpc_row=None, *, expand_vpc: bool = False) -> dict:
    """A resource as the product's serializer answers it (``vpc_row``: the joined VPC's columns)."""
    r = dict(zip(COLUMNS, row, strict=True))
    vpc = None
    if r["vpc_id"] is not None:
        vpc = represent(vpc_row) if expand_vpc else vpc_row[1]
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
        "created_at": rfc3339(r["created_at"]),
        "updated_at": rfc3339(r["updated_at"]),
        "provisioning_started_at": rfc3339(r["provisioning_started_at"]),
        "provisioned_at": rfc3339(r["provisioned_at"]),
        "last_execution": rfc3339(r["last_execution"]),
        "failure_reason": r["failure_reason"] or None,
        "provider_id": r["provider_id"] or None,
    }


def encode_cursor(created_at: datetime, pk: int, ordering: str = LIST_ORDERING, *, backward: bool = False) -> str:
    """The product's opaque cursor (elbia.api.pagination) for a position in a list ordered by created_at and id."""
    payload = {"o": ordering, "v": [created_at.isoformat(), pk]} | ({"b": 1} if backward else {})
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> tuple[datetime, int]:
    payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    created_at, pk = payload["v"]
    return datetime.fromisoformat(created_at), int(pk)


def list_sql(*, limit: int, cursor: str | None) -> tuple[str, list]:
    """The product's first page (or keyset page after ``cursor``) of an account's live resources: one statement."""
    if cursor is None:
        return f"{SELECT_WITH_VPC} WHERE ({LIVE}){ORDER} LIMIT {limit + 1}", []
    created_at, pk = decode_cursor(cursor)
    return f"{SELECT_WITH_VPC} WHERE ({LIVE} AND {AFTER}){ORDER} LIMIT {limit + 1}", [
        created_at,
        created_at,
        created_at,
        pk,
    ]


def list_links(base: str, limit: int, rows: list, has_next: bool, *, cursor_page: bool = False) -> str:
    """The product's Link header of a keyset page (no count asked): first, prev (a cursor page's), next."""
    links = [f'<{base}?limit={limit}>; rel="first"']
    if cursor_page and rows:
        first = dict(zip(COLUMNS, rows[0][:WIDTH], strict=True))
        previous = encode_cursor(first["created_at"], first["id"], backward=True)
        links.append(f'<{base}?cursor={previous}&limit={limit}>; rel="prev"')
    if has_next and rows:
        last = dict(zip(COLUMNS, rows[-1][:WIDTH], strict=True))
        links.append(f'<{base}?cursor={encode_cursor(last["created_at"], last["id"])}&limit={limit}>; rel="next"')
    return ", ".join(links)


def usage_statements(account_id: int, month: date) -> dict[str, tuple[str, list]]:
    """The product's statements for ``GET /v1/usage?month=``: the price book, the function days, the compute rollups."""
    _, end = month_bounds(month)
    last = month_end(month)
    return {
        "prices": (PRICES_SQL, ["USD", month]),
        "functions": (FUNCTION_DAYS_SQL, [account_id, month, last]),
        "compute": (
            COMPUTE_SQL,
            [
                "days",
                account_id,
                month,
                last,
                "through",
                "",
                0,
                1,
                "metered",
                account_id,
                0,
                "fresh",
                0,
                account_id,
                end,
            ],
        ),
    }


def price_book(month: date, rows) -> PriceBook:
    latest: dict = {}
    for kind, instance_type, unit_price in rows:
        latest.setdefault((kind, instance_type), unit_price)
    return PriceBook(
        month=month,
        request=latest.get((REQUEST, "")),
        gb_second=latest.get((GB_SECOND, "")),
        instance_hour={key[1]: value for key, value in latest.items() if key[0] == INSTANCE_HOUR},
    )


def _ceil(moment: datetime) -> datetime:
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + timedelta(seconds=1)


def instance_seconds(compute_rows, *, month: date, now: datetime) -> dict[str, int]:
    """Billed seconds per instance type from the compute rollup rows (the product's arithmetic, billing.rollups)."""
    start, end = month_bounds(month)
    seconds: dict[str, int] = {}
    through, metered, fresh = None, [], []
    for kind, _, instance_type, amount, moment in compute_rows:
        if kind == "days":
            seconds[instance_type] = seconds.get(instance_type, 0) + int(amount)
        elif kind == "through":
            through = moment
        elif kind == "metered":
            metered.append((instance_type, int(amount)))
        else:
            fresh.append((instance_type, moment))
    if through is not None and through < end and now > max(through, start):
        for instance_type, spans in metered:
            add = spans * max(int((min(_ceil(now), end) - max(through, start)).total_seconds()), 0)
            seconds[instance_type] = seconds.get(instance_type, 0) + add
    for instance_type, provisioned_at in fresh:
        active_from, active_to = provisioned_at.replace(microsecond=0), _ceil(max(now, provisioned_at))
        if (active_to - active_from).total_seconds() < MINIMUM_INSTANCE_SECONDS:
            add = MINIMUM_INSTANCE_SECONDS if start <= provisioned_at < end else 0
        else:
            add = max(int((min(active_to, end) - max(active_from, start)).total_seconds()), 0)
        seconds[instance_type] = seconds.get(instance_type, 0) + add
    return {kind: value for kind, value in seconds.items() if value}


def usage_body(month: date, prices: PriceBook, executions: int, mb_ms: int, seconds: dict[str, int]) -> dict:
    """The product's ``GET /v1/usage`` document."""
    priced: Usage = price_usage(
        MeteredUsage(executions=executions, mb_ms=mb_ms, instance_seconds=seconds), month=month, prices=prices
    )
    return {
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


def _decimal(value: Decimal) -> str:
    return format(value.normalize(), "f")
