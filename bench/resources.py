"""Benchmark of /v1/resources on PostgreSQL: seed a large inventory, serve it with gunicorn, measure it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/elbia_bench .venv/bin/python bench/resources.py

1. Migrates the database named by DATABASE_URL (created when missing) and seeds, unless it already
   holds them, ``--accounts`` accounts owning ``--resources`` resources in all, ``--measured`` of them
   in one account. Rows go in with PostgreSQL COPY, with the table's secondary indexes dropped during
   the load and rebuilt after it, then ANALYZE and VACUUM (so index-only scans work as in steady state).
2. Starts gunicorn (``--workers``, default 2) on 127.0.0.1 on a free port against that database.
3. Sends a bounded number of requests per scenario from ``--threads`` client threads and prints
   p50 / p99 latency and requests per second: a first page, a filtered page, a page deep in the
   measured account, and resource creation.
4. Prints the plans PostgreSQL chose for the list queries, and stops gunicorn.

The data plane is not involved: created resources are queued for a worker that this script does not run
(point REDIS_URL at a throwaway Redis database; the script empties its queue at the end).
"""

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "elbia.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production")
os.environ.setdefault("ELBIA_RATE_LIMIT", "1000000000/hour")

MARKER = "bench-account-0000"  # name of the measured account: its presence means the data is seeded
REGIONS = ("us-east-1", "us-east-1", "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1")
INSTANCE_TYPES = ("t2.micro", "t2.small", "t3.micro", "t3.medium", "m5.large", "m5.xlarge", "c5.large", "c5.2xlarge")
STATUSES = ["active"] * 85 + ["pending"] * 3 + ["failed"] * 3 + ["deleted"] * 7 + ["deleting"] * 2
ENVS = ("prod", "staging", "dev")
TEAMS = ("web", "data", "platform", "ml", "payments")
COLUMNS = (
    "public_id",
    "account_id",
    "type",
    "name",
    "region",
    "instance_type",
    "vpc_id",
    "cidr_block",
    "memory_mb",
    "tags",
    "status",
    "failure_reason",
    "created_at",
    "updated_at",
    "provisioning_started_at",
    "provisioned_at",
    "failed_at",
    "deleting_started_at",
    "deleted_at",
    "last_execution",
    "lifecycle_task_id",
    "requeue_count",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- database -------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    import psycopg

    name = urllib.parse.urlparse(url).path.lstrip("/")
    admin = urllib.parse.urlparse(url)._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def seed(*, accounts: int, resources: int, measured: int) -> None:
    """Accounts, one VPC per account and region used, and compute rows, loaded with COPY."""
    from django.db import connection

    from elbia.accounts.models import Account

    started = time.monotonic()
    rng = random.Random(42)
    now = datetime.now(UTC)
    owners = Account.objects.bulk_create(
        [Account(name=MARKER)] + [Account(name=f"bench-account-{n:04d}") for n in range(1, accounts)]
    )
    others = resources - measured
    per_account = [measured] + [
        others // (accounts - 1) + (1 if n < others % (accounts - 1) else 0) for n in range(accounts - 1)
    ]
    ids = iter(rng.sample(range(10**10), resources + accounts * len(set(REGIONS))))

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'resources_resource' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        secondary = cursor.fetchall()
        for name, _ in secondary:
            cursor.execute(f'DROP INDEX "{name}"')
        log(f"dropped {len(secondary)} secondary indexes for the load")

        # VPCs first (their ids are needed by the instances): one per account and region.
        vpc_rows = []
        for owner in owners:
            for region in sorted(set(REGIONS)):
                created = now - timedelta(days=800)
                vpc_rows.append(
                    (
                        f"RES_{next(ids):010d}",
                        owner.pk,
                        "vpc",
                        "default",
                        region,
                        "",
                        None,
                        "172.31.0.0/16",
                        None,
                        "{}",
                        "active",
                        "",
                        created,
                        created,
                        created,
                        created,
                        None,
                        None,
                        None,
                        None,
                        "",
                        0,
                    )
                )
        copy_rows(cursor, vpc_rows)
        cursor.execute("SELECT account_id, region, id FROM resources_resource WHERE type = 'vpc'")
        vpcs = {(account_id, region): pk for account_id, region, pk in cursor.fetchall()}

        rows = 0
        batch = []
        for owner, count in zip(owners, per_account, strict=True):
            for _ in range(count):
                region = rng.choice(REGIONS)
                created = now - timedelta(seconds=rng.randrange(730 * 86400))
                status = rng.choice(STATUSES)
                provisioned = created + timedelta(seconds=30) if status in ("active", "deleted", "deleting") else None
                tags = {"env": rng.choice(ENVS), "team": rng.choice(TEAMS)}
                batch.append(
                    (
                        f"RES_{next(ids):010d}",
                        owner.pk,
                        "compute",
                        f"{rng.choice(TEAMS)}-{rng.randrange(10**6)}",
                        region,
                        rng.choice(INSTANCE_TYPES),
                        vpcs[owner.pk, region],
                        "",
                        None,
                        json.dumps(tags),
                        status,
                        "Simulated provisioning failure." if status == "failed" else "",
                        created,
                        created,
                        created,
                        provisioned,
                        created + timedelta(seconds=30) if status == "failed" else None,
                        created + timedelta(days=1) if status in ("deleted", "deleting") else None,
                        created + timedelta(days=1, seconds=30) if status == "deleted" else None,
                        None,
                        "",
                        0,
                    )
                )
                if len(batch) == 50_000:
                    copy_rows(cursor, batch)
                    rows += len(batch)
                    batch.clear()
        copy_rows(cursor, batch)
        rows += len(batch)
        log(f"copied {rows:,} instances and {len(vpc_rows):,} VPCs in {time.monotonic() - started:.0f}s")

        for _name, definition in secondary:
            cursor.execute(definition)
        log(f"rebuilt the indexes; {time.monotonic() - started:.0f}s so far")
    connection.close()
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as plain:
        plain.execute("VACUUM (ANALYZE) resources_resource")
    log(f"seeded in {time.monotonic() - started:.0f}s")


def copy_rows(cursor, rows) -> None:
    with cursor.cursor.copy(f"COPY resources_resource ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def measured_account_token() -> str:
    from django.conf import settings

    from elbia.accounts.models import Account, User
    from elbia.accounts.services import token_issue

    account = Account.objects.get(name=MARKER)
    user = account.users.first() or User.objects.create_user(username="bench", account=account)
    return token_issue(user=user, scopes=list(settings.SCOPES), name="bench").access_token


# --- server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(port: int, workers: int) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [
            str(gunicorn),
            "elbia.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server
        except OSError:
            time.sleep(0.2)
    stop(server)
    raise SystemExit("gunicorn did not start")


def stop(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(server.pid, signal.SIGKILL)


# --- load ----------------------------------------------------------------------------------------


def run_scenario(
    port: int, token: str, *, method: str, path: str, body: dict | None, requests: int, threads: int, expect: int
) -> dict:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    payload = json.dumps(body) if body is not None else None
    latencies: list[float] = []
    failures: list[str] = []
    remaining = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            connection = HTTPConnection("127.0.0.1", port, timeout=60)
            began = time.perf_counter()
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - began
            connection.close()
            with lock:
                latencies.append(elapsed)
                if response.status != expect:
                    failures.append(str(response.status))

    began = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": len(failures),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000,
        "req_per_s": len(latencies) / wall,
    }


def explain(token_account_name: str) -> None:
    from django.db import connection

    from elbia.accounts.models import Account
    from elbia.api.pagination import page_slice
    from resources.filtersets import resource_list_params
    from resources.selectors import resource_list

    account = Account.objects.get(name=token_account_name)
    cases = {
        "first page": {},
        "filtered page": {"filter": FILTER},
        "deep page": {},
    }
    for label, params in cases.items():
        resources = resource_list(account=account, **resource_list_params(params)).select_related("vpc")
        offset = 45_000 if label == "deep page" else 0
        page = page_slice(resources, offset, 50)
        for title, query in (("count", resources.order_by().values("pk")), ("page", page)):
            sql, args = query.query.sql_with_params()
            if title == "count":
                sql, args = f"SELECT count(*) FROM ({sql}) AS c", args
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) " + sql, args)
                lines = [row[0] for row in cursor.fetchall()]
            interesting = [line.strip() for line in lines if "Scan" in line or "Execution Time" in line]
            print(f"  {label} / {title}: " + " | ".join(interesting))


FILTER = json.dumps(
    {
        "region": "us-east-1",
        "status": {"$in": ["active", "pending"]},
        "tags.env": "prod",
        "created_at": {"$gte": "2025-01-01T00:00:00Z"},
    },
    separators=(",", ":"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--measured", type=int, default=50_000, help="resources of the measured account")
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario")
    parser.add_argument("--threads", type=int, default=4, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    options = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit(
            "Set DATABASE_URL to a PostgreSQL database the benchmark may fill, e.g. "
            "postgres://postgres@127.0.0.1:5432/elbia_bench"
        )
    ensure_database(url)
    setup_django()
    from elbia.accounts.models import Account

    if Account.objects.filter(name=MARKER).exists():
        log("reusing the seeded data")
    else:
        seed(accounts=options.accounts, resources=options.resources, measured=options.measured)
    from resources.models import Resource

    total = Resource.objects.count()
    mine = Resource.objects.filter(account__name=MARKER).count()
    token = measured_account_token()
    log(f"{total:,} resources in the database, {mine:,} in the measured account")

    port = free_port()
    server = start_gunicorn(port, options.workers)
    scenarios = [
        ("GET  /v1/resources?limit=50", "GET", "/v1/resources?limit=50", None, 200),
        (
            "GET  /v1/resources?limit=50&filter=...",
            "GET",
            "/v1/resources?limit=50&filter=" + urllib.parse.quote(FILTER),
            None,
            200,
        ),
        ("GET  /v1/resources?limit=50&offset=45000", "GET", "/v1/resources?limit=50&offset=45000", None, 200),
        ("GET  /v1/resources?limit=200&expand=vpc", "GET", "/v1/resources?limit=200&expand=vpc", None, 200),
        (
            "POST /v1/resources",
            "POST",
            "/v1/resources",
            {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default", "tags": {"env": "bench"}},
            201,
        ),
    ]
    try:
        print(
            f"\n{options.requests} requests per scenario, {options.threads} client threads, "
            f"gunicorn with {options.workers} workers, filter={FILTER}\n"
        )
        print(f"{'scenario':45} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'errors':>7}")
        for label, method, path, body, expect in scenarios:
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
                f"{label:45} {figures['p50_ms']:8.1f} {figures['p99_ms']:8.1f} {figures['req_per_s']:8.1f} "
                f"{figures['errors']:7d}",
                flush=True,
            )
    finally:
        stop(server)
    print("\nPlans (EXPLAIN ANALYZE) of the list queries in the measured account:")
    explain(MARKER)
    created = Resource.objects.filter(account__name=MARKER, tags__env="bench")
    log(f"removing the {created.count():,} resources the POST scenario created")
    created.delete()
    purge_queue()


def purge_queue() -> None:
    from django.conf import settings

    from elbia.celery import app

    if settings.CELERY_BROKER_URL.startswith("redis"):
        app.control.purge()


if __name__ == "__main__":
    main()
