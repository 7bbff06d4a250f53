"""Benchmark of /v1/functions on PostgreSQL: seed many functions, serve them with gunicorn, measure the lists.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/elbia_bench_functions .venv/bin/python bench/functions.py

1. Migrates the database named by DATABASE_URL (created when missing) and seeds, unless it already holds
   them, ``--accounts`` accounts owning ``--functions`` functions in all, ``--measured`` of them in one
   account. Each function has its resource (``type=function``) and one to three tags from a pool where
   ``auth`` is on about one function in eight and ``rare`` on about one in a thousand. Rows go in with
   PostgreSQL COPY, then VACUUM ANALYZE.
2. Counts the SQL queries of each list scenario (Django's test client in this process), the figure the
   test suite pins.
3. Starts gunicorn (``--workers``) on 127.0.0.1 on a free port, sends a bounded number of requests per
   scenario from ``--threads`` client threads, prints p50 / p99 latency and requests per second.
4. Prints the plans PostgreSQL chose for the count and page queries, and stops gunicorn.

Created functions are queued for a worker this script does not run (point REDIS_URL at a throwaway Redis
database; the queue is emptied at the end). The server helpers are bench/resources.py's.
"""

import argparse
import json
import os
import random
import sys
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.resources import (
    ensure_database,
    free_port,
    log,
    purge_queue,
    run_scenario,
    setup_django,
    start_gunicorn,
    stop,
)

MARKER = "bench-functions-0000"  # name of the measured account: its presence means the data is seeded
RUNTIMES = (("Node.js 20", "index.handler"),) * 4 + (
    ("Node.js 22", "index.handler"),
    ("Python 3.12", "app.handler"),
    ("Python 3.13", "app.handler"),
    ("Java 21", "example.Handler::handleRequest"),
    ("Go 1.x", "bootstrap"),
)
REGIONS = ("us-east-1", "us-east-1", "us-west-2", "eu-west-1")
STATUSES = ["active"] * 80 + ["deprecated"] * 8 + ["failed"] * 4 + ["deleted"] * 8
TAG_POOL = [f"group-{n}" for n in range(24)]
FUNCTION_COLUMNS = (
    "public_id",
    "account_id",
    "resource_id",
    "name",
    "runtime",
    "handler",
    "memory_mb",
    "timeout_s",
    "region",
    "tags",
    "environment",
    "status",
    "failure_reason",
    "created_at",
    "updated_at",
    "deployment_started",
    "deployed_at",
    "failed_at",
    "deprecated_at",
    "deleted_at",
    "last_executed",
    "lifecycle_task_id",
    "requeue_count",
)
RESOURCE_COLUMNS = (
    "public_id",
    "account_id",
    "type",
    "name",
    "region",
    "instance_type",
    "cidr_block",
    "memory_mb",
    "tags",
    "status",
    "failure_reason",
    "created_at",
    "updated_at",
    "provisioning_started_at",
    "provisioned_at",
    "deleted_at",
    "lifecycle_task_id",
    "requeue_count",
)
SCENARIOS = [
    ("GET /v1/functions?limit=50", "/v1/functions?limit=50"),
    ("GET /v1/functions?limit=50&tag=auth", "/v1/functions?limit=50&tag=auth"),
    ("GET /v1/functions?limit=50&tag=rare", "/v1/functions?limit=50&tag=rare"),
    (
        "GET ...&tag=auth&runtime=Node.js 20&status=active",
        "/v1/functions?limit=50&tag=auth&runtime=Node.js+20&status=active",
    ),
    ("GET /v1/functions?limit=50&tag=auth&offset=5000", "/v1/functions?limit=50&tag=auth&offset=5000"),
    ("GET /v1/functions?limit=200&tag=auth", "/v1/functions?limit=200&tag=auth"),
]


def tags_for(rng: random.Random) -> list[str]:
    tags = rng.sample(TAG_POOL, rng.randint(1, 3))
    if rng.random() < 0.125:
        tags[0] = "auth"
    if rng.random() < 0.001:
        tags.append("rare")
    return list(dict.fromkeys(tags))


def seed(*, accounts: int, functions: int, measured: int) -> None:
    """Accounts, and for each function its resource, its row and its tag rows, loaded with COPY."""
    import psycopg
    from django.db import connection

    from elbia.accounts.models import Account

    started = time.monotonic()
    rng = random.Random(7)
    now = datetime.now(UTC)
    owners = Account.objects.bulk_create(
        [Account(name=MARKER)] + [Account(name=f"bench-functions-{n:04d}") for n in range(1, accounts)]
    )
    others = functions - measured
    per_account = [measured] + [
        others // (accounts - 1) + (1 if n < others % (accounts - 1) else 0) for n in range(accounts - 1)
    ]
    ids = iter(rng.sample(range(10**10), functions * 2))
    planned = []  # (account, name, runtime, handler, memory, region, tags, status, created)
    for owner, count in zip(owners, per_account, strict=True):
        for number in range(count):
            runtime, handler = rng.choice(RUNTIMES)
            planned.append(
                (
                    owner.pk,
                    f"fn-{number:06d}",
                    runtime,
                    handler,
                    rng.choice((128, 256, 512, 1024)),
                    rng.choice(REGIONS),
                    tags_for(rng),
                    rng.choice(STATUSES),
                    now - timedelta(seconds=rng.randrange(730 * 86400)),
                )
            )
    resource_ids = [f"RES_{next(ids):010d}" for _ in planned]
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY resources_resource ({', '.join(RESOURCE_COLUMNS)}) FROM STDIN") as copy:
            for public_id, (account, name, _, _, memory, region, _, status, created) in zip(
                resource_ids, planned, strict=True
            ):
                deleted = status == "deleted"
                copy.write_row(
                    (
                        public_id,
                        account,
                        "function",
                        name,
                        region,
                        "",
                        "",
                        memory,
                        "{}",
                        "deleted" if deleted else "active",
                        "",
                        created,
                        created,
                        created,
                        created,
                        created + timedelta(days=1) if deleted else None,
                        "",
                        0,
                    )
                )
        log(f"copied {len(planned):,} function resources in {time.monotonic() - started:.0f}s")
        raw.execute("SELECT public_id, id FROM resources_resource WHERE type = 'function'")
        resource_pk = dict(raw.fetchall())
        with raw.copy(f"COPY functions_function ({', '.join(FUNCTION_COLUMNS)}) FROM STDIN") as copy:
            for resource_id, (account, name, runtime, handler, memory, region, tags, status, created) in zip(
                resource_ids, planned, strict=True
            ):
                copy.write_row(
                    (
                        f"FUNC_{next(ids):010d}",
                        account,
                        resource_pk[resource_id],
                        name,
                        runtime,
                        handler,
                        memory,
                        3,
                        region,
                        json.dumps(tags),
                        json.dumps({"LOG_LEVEL": "info"}),
                        status,
                        "Simulated deployment failure." if status == "failed" else "",
                        created,
                        created,
                        created,
                        created,
                        created if status == "failed" else None,
                        created if status == "deprecated" else None,
                        created + timedelta(days=1) if status == "deleted" else None,
                        now - timedelta(seconds=rng.randrange(86400)) if status != "deleted" else None,
                        "",
                        0,
                    )
                )
        log(f"copied {len(planned):,} functions; {time.monotonic() - started:.0f}s so far")
        raw.execute("SELECT resource_id, id FROM functions_function")
        function_pk = dict(raw.fetchall())
        with raw.copy("COPY functions_functiontag (account_id, function_id, tag) FROM STDIN") as copy:
            tag_rows = 0
            for resource_id, (account, *_, tags, _status, _created) in zip(resource_ids, planned, strict=True):
                for tag in tags:
                    copy.write_row((account, function_pk[resource_pk[resource_id]], tag))
                    tag_rows += 1
        log(f"copied {tag_rows:,} tag rows; {time.monotonic() - started:.0f}s so far")
    connection.close()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as plain:
        for table in ("resources_resource", "functions_function", "functions_functiontag"):
            plain.execute(f"VACUUM (ANALYZE) {table}")
    log(f"seeded in {time.monotonic() - started:.0f}s")


def measured_token() -> str:
    from django.conf import settings

    from elbia.accounts.models import Account, User
    from elbia.accounts.services import token_issue

    account = Account.objects.get(name=MARKER)
    user = account.users.first() or User.objects.create_user(username="bench-functions", account=account)
    return token_issue(user=user, scopes=list(settings.SCOPES), name="bench").access_token


def count_queries(token: str) -> None:
    """The SQL queries each list scenario runs (after the token's first use), as the tests pin them."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    client.get("/v1/functions?limit=1")
    for label, path in SCENARIOS:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(path)
        assert response.status_code == 200, response.content
        print(
            f"  {label:52} {len(queries)} queries, {len(response.json())} functions, "
            f"X-Total-Count {response['X-Total-Count']}"
        )


def explain() -> None:
    from django.db import connection

    from elbia.accounts.models import Account
    from elbia.api.pagination import page_slice
    from functions.filtersets import function_list_params
    from functions.selectors import function_list

    account = Account.objects.get(name=MARKER)
    for label, path in SCENARIOS[1:4]:
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(path).query))
        params.pop("limit")
        functions = function_list(account=account, **function_list_params(params))
        for title, query in (("count", functions.order_by().values("pk")), ("page", page_slice(functions, 0, 50))):
            sql, args = query.query.sql_with_params()
            if title == "count":
                sql = f"SELECT count(*) FROM ({sql}) AS c"
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, args)
                lines = [row[0].strip() for row in cursor.fetchall()]
            interesting = [line for line in lines if "Scan" in line or "Join" in line or "Execution Time" in line]
            print(f"  {label} / {title}: " + " | ".join(interesting))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=50)
    parser.add_argument("--functions", type=int, default=250_000)
    parser.add_argument("--measured", type=int, default=50_000, help="functions of the measured account")
    parser.add_argument("--requests", type=int, default=500, help="requests per scenario")
    parser.add_argument("--threads", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    options = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit(
            "Set DATABASE_URL to a PostgreSQL database the benchmark may fill, e.g. "
            "postgres://postgres@127.0.0.1:5432/elbia_bench_functions"
        )
    ensure_database(url)
    setup_django()
    from elbia.accounts.models import Account
    from functions.models import Function, FunctionTag

    if Account.objects.filter(name=MARKER).exists():
        log("reusing the seeded data")
    else:
        seed(accounts=options.accounts, functions=options.functions, measured=options.measured)
    mine = Function.objects.filter(account__name=MARKER)
    log(
        f"{Function.objects.count():,} functions and {FunctionTag.objects.count():,} tag rows in the database; "
        f"{mine.count():,} functions in the measured account, {mine.filter(tags__contains=['auth']).count():,} "
        f"tagged auth, {mine.filter(tags__contains=['rare']).count():,} tagged rare"
    )
    token = measured_token()
    print("\nQueries per request:")
    count_queries(token)

    port = free_port()
    server = start_gunicorn(port, options.workers)
    scenarios = [(label, "GET", path, None, 200) for label, path in SCENARIOS]
    scenarios.append(
        (
            "POST /v1/functions",
            "POST",
            "/v1/functions",
            {"name": "bench-{n}", "runtime": "Node.js 20", "handler": "index.handler", "tags": ["bench"]},
            201,
        )
    )
    try:
        print(
            f"\n{options.requests} requests per scenario, {options.threads} client threads, "
            f"gunicorn with {options.workers} workers\n"
        )
        print(f"{'scenario':52} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>7}")
        for label, method, path, body, expect in scenarios:
            if body is not None:  # every creation needs its own name: one scenario run per name
                figures = create_many(port, token, body, options)
            else:
                run_scenario(port, token, method=method, path=path, body=body, requests=20, threads=2, expect=expect)
                figures = run_scenario(
                    port,
                    token,
                    method=method,
                    path=path,
                    body=body,
                    requests=options.requests,
                    threads=options.threads,
                    expect=expect,
                )
            print(
                f"{label:52} {figures['p50_ms']:8.1f} {figures['p99_ms']:8.1f} {figures['req_per_s']:8.1f} "
                f"{figures['errors']:7d}",
                flush=True,
            )
    finally:
        stop(server)
    print("\nPlans (EXPLAIN ANALYZE) of the list queries in the measured account:")
    explain()
    created = Function.objects.filter(account__name=MARKER, name__startswith="bench-")
    log(f"removing the {created.count():,} functions the POST scenario created")
    from resources.models import Resource

    resources = list(created.values_list("resource_id", flat=True))
    created.delete()
    Resource.objects.filter(pk__in=resources).delete()
    purge_queue()


def create_many(port: int, token: str, body: dict, options) -> dict:
    """POST distinct functions (names must be unique) and time them like run_scenario does."""
    import statistics
    from http.client import HTTPConnection

    latencies = []
    errors = 0
    began = time.perf_counter()
    for number in range(min(options.requests, 200)):
        connection = HTTPConnection("127.0.0.1", port, timeout=60)
        payload = json.dumps({**body, "name": body["name"].format(n=number)})
        start = time.perf_counter()
        connection.request(
            "POST",
            "/v1/functions",
            body=payload,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - start)
        errors += response.status != 201
        connection.close()
    wall = time.perf_counter() - began
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000,
        "req_per_s": len(latencies) / wall,
        "errors": errors,
    }


if __name__ == "__main__":
    main()
