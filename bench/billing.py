"""Billing benchmarks: metering ingestion through gunicorn, and the monthly invoice job at scale.

    .venv/bin/python bench/billing.py [--accounts 10000] [--events-per-account 100] [--batches 60]
                                      [--clients 4] [--web-workers 2] [--job-workers 2] [--keep]

Needs PostgreSQL and Redis on 127.0.0.1. It creates a fresh database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/elbia_bench_billing) and drops it at the end unless --keep;
Celery messages go to BENCH_REDIS_URL (default redis://127.0.0.1:6379/4) and are purged afterwards.

1. Ingestion: 1,000-event batches POSTed to /v1/usage/events on a real gunicorn (bound to a free
   port on 127.0.0.1) by several client threads; then the same batches again (all duplicates);
   then the service called in-process, without HTTP.
2. The monthly job: ACCOUNTS accounts with EVENTS_PER_ACCOUNT events each in one month (loaded
   with COPY), every tenth with a compute instance; `invoice_generate_missing` in one process,
   again (nothing to do), and fanned out over JOB_WORKERS processes as the Celery chunks are;
   then PDF rendering.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/elbia_bench_billing")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
MEDIA_ROOT = tempfile.mkdtemp(prefix="elbia-bench-media-")
os.environ.update(
    MEDIA_ROOT=MEDIA_ROOT,
    DATABASE_URL=DATABASE_URL,
    REDIS_URL=REDIS_URL,
    SECRET_KEY="bench-secret-key-not-for-production",
    DEBUG="0",
    ELBIA_RATE_LIMIT="100000000/hour",
    LOG_LEVEL="WARNING",
    DJANGO_SETTINGS_MODULE="elbia.settings",
)

MONTH = date(2025, 1, 1)  # the benchmark month of the invoice job
TODAY = date(2025, 2, 1)


def create_database() -> None:
    import psycopg

    parts = urlsplit(DATABASE_URL)
    name = parts.path.lstrip("/")
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database() -> None:
    import psycopg

    name = urlsplit(DATABASE_URL).path.lstrip("/")
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- 1. Ingestion ---------------------------------------------------------------------------------


def bench_ingestion(args) -> dict:
    from django.conf import settings

    from elbia.accounts.services import account_create, token_issue
    from functions.models import Function
    from resources.models import Resource

    user = account_create(username="bench", email="bench@example.com", password="bench-password-123")
    functions = []
    for index in range(10):
        resource = Resource.objects.create(account=user.account, type="function", region="us-east-1", memory_mb=512)
        functions.append(
            Function.objects.create(
                account=user.account,
                resource=resource,
                name=f"fn-{index}",
                runtime="Python 3.12",
                handler="app.handler",
                memory_mb=512,
                created_at=datetime(2020, 1, 1, tzinfo=UTC),
            )
        )
    token = token_issue(user=user, scopes=list(settings.SCOPES)).access_token
    now = datetime.now(UTC)
    batches = []
    for batch in range(args.batches):
        events = [
            {
                "event_id": f"b{batch}-e{n}",
                "function": functions[n % len(functions)].public_id,
                "timestamp": (now - timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "duration_ms": 50 + n % 3000,
            }
            for n in range(1000)
        ]
        batches.append(json.dumps({"events": events}).encode())

    port = free_port()
    server = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "elbia.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.web_workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)

        def send_all(label: str) -> dict:
            latencies: list[float] = []
            counts = {"accepted": 0, "duplicates": 0}
            lock = threading.Lock()
            queue = list(enumerate(batches))

            def client() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                while True:
                    with lock:
                        if not queue:
                            return
                        _, body = queue.pop()
                    started = time.perf_counter()
                    conn.request("POST", "/v1/usage/events", body=body, headers=headers)
                    response = conn.getresponse()
                    payload = json.loads(response.read())
                    elapsed = time.perf_counter() - started
                    if response.status != 200:
                        raise RuntimeError(f"{response.status}: {payload}")
                    with lock:
                        latencies.append(elapsed)
                        counts["accepted"] += payload["accepted"]
                        counts["duplicates"] += payload["duplicates"]

            started = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            events = len(batches) * 1000
            return {
                "label": label,
                "events": events,
                "seconds": wall,
                "events_per_second": events / wall,
                "p50_ms": statistics.median(latencies) * 1000,
                "p95_ms": percentile(latencies, 0.95) * 1000,
                **counts,
            }

        fresh = send_all("new events over HTTP")
        resent = send_all("the same batches again (all duplicates)")
    finally:
        server.terminate()
        server.wait(timeout=30)

    from billing.services import UsageEventInput, usage_record_events

    service_batches = [
        [
            UsageEventInput(
                event_id=f"svc{batch}-e{n}",
                function=functions[n % len(functions)].public_id,
                timestamp=now - timedelta(seconds=n),
                duration_ms=50 + n,
            )
            for n in range(1000)
        ]
        for batch in range(args.batches // 2 or 1)
    ]
    started = time.perf_counter()
    for events in service_batches:
        usage_record_events(account=user.account, events=events)
    wall = time.perf_counter() - started
    service = {
        "label": "the service in-process, one caller",
        "events": len(service_batches) * 1000,
        "seconds": wall,
        "events_per_second": len(service_batches) * 1000 / wall,
    }
    return {"http": fresh, "duplicates": resent, "service": service}


# --- 2. The monthly job ---------------------------------------------------------------------------


def load_month(args) -> None:
    from django.db import connection

    from billing.models import UsageEvent
    from elbia.accounts.models import Account
    from functions.models import Function
    from resources.models import Resource

    created = datetime(MONTH.year, MONTH.month, 1, tzinfo=UTC)
    first = Account.objects.order_by("-id").values_list("id", flat=True).first() or 0
    Account.objects.bulk_create(
        [Account(name=f"Bench {n}", created_at=created) for n in range(args.accounts)], batch_size=5000
    )
    account_ids = list(Account.objects.filter(id__gt=first).order_by("id").values_list("id", flat=True))
    Function.objects.bulk_create(
        [
            Function(
                account_id=account_id,
                public_id=f"FUNC_{9_000_000_000 + n:010d}",
                name="worker",
                runtime="Python 3.12",
                handler="app.handler",
                memory_mb=128 * (n % 8 + 1),
                created_at=created,
            )
            for n, account_id in enumerate(account_ids)
        ],
        batch_size=5000,
    )
    Resource.objects.bulk_create(
        [
            Resource(
                account_id=account_id,
                public_id=f"RES_{9_000_000_000 + n:010d}",
                type="compute",
                region="us-east-1",
                instance_type=("t3.micro", "m5.large", "c5.large")[n % 3],
                status="active",
                created_at=created,
                provisioned_at=created + timedelta(hours=n % 500),
            )
            for n, account_id in enumerate(account_ids[::10])
        ],
        batch_size=5000,
    )
    functions = dict(Function.objects.filter(account_id__in=account_ids).values_list("account_id", "id"))
    table = UsageEvent._meta.db_table
    columns = "account_id, function_id, event_id, timestamp, duration_ms, memory_mb, received_at"
    seconds_in_month = 31 * 24 * 3600
    with connection.cursor() as cursor, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for account_id in account_ids:
            function_id = functions[account_id]
            for n in range(args.events_per_account):
                moment = created + timedelta(seconds=(account_id * 7919 + n * 26_777) % seconds_in_month)
                copy.write_row((account_id, function_id, f"e{n}", moment, 20 + (n * 37) % 3000, 512, moment))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")


def _job_worker(account_ids: list[int]) -> tuple[int, int]:
    import django
    from django.db import connections

    django.setup()
    from billing.services import invoice_generate_missing

    run = invoice_generate_missing(today=TODAY, account_ids=account_ids, chunk_size=500)
    connections.close_all()
    return run.created, run.existing


def bench_job(args) -> dict:
    from django.db import connection, connections

    from billing.models import Invoice, InvoiceLine
    from billing.services import invoice_ensure_pdf, invoice_generate_missing
    from elbia.accounts.models import Account

    started = time.perf_counter()
    load_month(args)
    load_seconds = time.perf_counter() - started
    invoice_accounts = Account.objects.filter(created_at__lt=datetime(2025, 2, 1, tzinfo=UTC)).count()

    statements = []

    def count(execute, sql, params, many, context):
        statements.append(1)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        started = time.perf_counter()
        first = invoice_generate_missing(today=TODAY)
        first_seconds = time.perf_counter() - started
    queries = len(statements)
    started = time.perf_counter()
    again = invoice_generate_missing(today=TODAY)
    again_seconds = time.perf_counter() - started

    # The Celery fan-out: the same work split in chunks over several processes.
    InvoiceLine.objects.all().delete()
    Invoice.objects.all().delete()
    ids = list(Account.objects.order_by("id").values_list("id", flat=True))
    chunks = [ids[start : start + 500] for start in range(0, len(ids), 500)]
    connections.close_all()
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(args.job_workers) as pool:
        results = pool.map(_job_worker, chunks)
    parallel_seconds = time.perf_counter() - started
    parallel_created = sum(created for created, _ in results)

    total_cents = sum(Invoice.objects.values_list("amount_cents", flat=True))
    sample = list(Invoice.objects.order_by("id").values_list("id", flat=True)[: args.pdfs])
    started = time.perf_counter()
    for invoice_id in sample:
        invoice_ensure_pdf(invoice_id=invoice_id)
    pdf_seconds = time.perf_counter() - started
    return {
        "accounts": invoice_accounts,
        "events": args.accounts * args.events_per_account,
        "load_seconds": load_seconds,
        "first_run": {
            "created": first.created,
            "seconds": first_seconds,
            "invoices_per_second": first.created / first_seconds,
            "queries": queries,
            "queries_per_invoice": queries / max(first.created, 1),
        },
        "second_run": {"created": again.created, "existing": again.existing, "seconds": again_seconds},
        "fan_out": {
            "workers": args.job_workers,
            "created": parallel_created,
            "seconds": parallel_seconds,
            "invoices_per_second": parallel_created / parallel_seconds,
        },
        "total_billed": f"${total_cents / 100:,.2f}",
        "pdfs": {"rendered": len(sample), "seconds": pdf_seconds, "per_second": len(sample) / pdf_seconds},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--events-per-account", type=int, default=100)
    parser.add_argument("--batches", type=int, default=60, help="1,000-event batches sent over HTTP")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients")
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--job-workers", type=int, default=2, help="processes for the fanned-out job")
    parser.add_argument("--pdfs", type=int, default=200, help="invoice PDFs to render")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    create_database()
    import django

    django.setup()
    from django.core.management import call_command

    try:
        call_command("migrate", verbosity=0)
        print(f"PostgreSQL: {DATABASE_URL}; {os.cpu_count()} CPUs; {args.web_workers} gunicorn workers")
        ingestion = bench_ingestion(args)
        for key in ("http", "duplicates", "service"):
            row = ingestion[key]
            line = f"ingestion, {row['label']}: {row['events']:,} events in {row['seconds']:.2f} s = "
            line += f"{row['events_per_second']:,.0f} events/s"
            if "p50_ms" in row:
                line += f" (per 1,000-event request: p50 {row['p50_ms']:.0f} ms, p95 {row['p95_ms']:.0f} ms;"
                line += f" accepted {row['accepted']:,}, duplicates {row['duplicates']:,})"
            print(line)
        job = bench_job(args)
        print(f"job data: {job['accounts']:,} accounts, {job['events']:,} events loaded in {job['load_seconds']:.1f} s")
        first = job["first_run"]
        print(
            f"job, one process: {first['created']:,} invoices in {first['seconds']:.1f} s = "
            f"{first['invoices_per_second']:,.0f} invoices/s, {first['queries']:,} queries "
            f"({first['queries_per_invoice']:.1f} per invoice)"
        )
        again = job["second_run"]
        print(
            f"job, run again: {again['created']} created, {again['existing']:,} already there, "
            f"in {again['seconds']:.1f} s"
        )
        fan = job["fan_out"]
        print(
            f"job, fanned out over {fan['workers']} processes in 500-account chunks: {fan['created']:,} invoices "
            f"in {fan['seconds']:.1f} s = {fan['invoices_per_second']:,.0f} invoices/s"
        )
        print(f"total billed for {MONTH:%Y-%m}: {job['total_billed']}")
        pdfs = job["pdfs"]
        print(f"PDFs: {pdfs['rendered']} rendered and stored in {pdfs['seconds']:.1f} s = {pdfs['per_second']:.0f}/s")
    finally:
        from django.db import connections

        connections.close_all()
        import redis

        redis.Redis.from_url(REDIS_URL).delete("elbia")
        shutil.rmtree(MEDIA_ROOT, ignore_errors=True)
        if not args.keep:
            drop_database()


if __name__ == "__main__":
    main()
