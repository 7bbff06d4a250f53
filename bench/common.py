"""What every benchmark shares: the environment, the database and its seed, tokens, gunicorn, the load client.

Nothing here imports Django at module level: the load client runs in a separate (spawned) process
that imports this module and must stay light.

The seed (``seed``) is what ``bench/run.py`` measures against, in a dedicated PostgreSQL database:

- 1,000 accounts owning 1,000,000 resources (one VPC per account and region, compute instances),
  50,000 of them in the measured account ``bench-account-0000``;
- 1,000 functions of the measured account (with their function resources and one or two tags each),
  ``MEASURED_EVENTS`` usage events of theirs spread over ``USAGE_MONTH`` and ``BIG_EVENTS`` over
  ``BIG_USAGE_MONTH`` (whole past months: no figure depends on the day of the month);
- 10,000 accounts created on the 1st of ``INVOICE_MONTH``, each with one function and 100 usage
  events in that month, every tenth with a compute instance: the monthly invoice job's input.

Rows go in with COPY, with the resource table's secondary indexes dropped during the load and
rebuilt after it; the daily usage rollups are then built from the raw rows (``reconcile_usage --fix``,
with the daily close at the seed's last midnight), then VACUUM ANALYZE. A marker table ``bench_seed``
records what was seeded, so a second run reuses it (``--reseed`` drops and recreates the database).
"""

from __future__ import annotations

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
from datetime import UTC, date, datetime, timedelta
from http.client import HTTPConnection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/elbia_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
OUT_DIR = ROOT / "bench" / "out"  # gitignored: media files and logs of benchmark runs

SEED_VERSION = 3  # bump when the seed's shape changes: an older seed is then rebuilt
MEASURED = "bench-account-0000"  # the measured account's name
PROVISIONING = "bench-account-0001"  # the account the Celery provisioning benchmark creates resources in
ACCOUNTS = 1_000
RESOURCES = 1_000_000
MEASURED_RESOURCES = 50_000
MEASURED_FUNCTIONS = 1_000
MEASURED_EVENTS = 200_000
BIG_EVENTS = 2_000_000
# Whole months, fixed: the figures do not depend on the day of the month a run happens on.
USAGE_MONTH = date(2025, 5, 1)  # MEASURED_EVENTS of the measured account
BIG_USAGE_MONTH = date(2025, 7, 1)  # BIG_EVENTS of the measured account
INVOICE_ACCOUNTS = 10_000
EVENTS_PER_INVOICE_ACCOUNT = 100
INVOICE_MONTH = date(2025, 1, 1)  # the month the invoice job bills
INVOICE_TODAY = date(2025, 2, 1)

REGIONS = ("us-east-1", "us-east-1", "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1")
INSTANCE_TYPES = ("t2.micro", "t2.small", "t3.micro", "t3.medium", "m5.large", "m5.xlarge", "c5.large", "c5.2xlarge")
STATUSES = ["active"] * 85 + ["pending"] * 3 + ["failed"] * 3 + ["deleted"] * 7 + ["deleting"] * 2
ENVS = ("prod", "staging", "dev")
TEAMS = ("web", "data", "platform", "ml", "payments")
FUNCTION_STATUSES = ["active"] * 93 + ["deprecated"] * 4 + ["failed"] * 3
FUNCTION_TAGS = ("api", "batch", "cron", "etl", "webhook", "internal")
RESOURCE_COLUMNS = (
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
    "provider_id",
)
EVENT_COLUMNS = "account_id, function_id, event_id, timestamp, duration_ms, memory_mb, received_at"


def configure(*, settings: str = "bench.settings") -> None:
    """Point this process (and the servers it starts) at the benchmark database and Redis DB."""
    OUT_DIR.mkdir(exist_ok=True)
    os.environ.update(
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        DJANGO_SETTINGS_MODULE=settings,
        SECRET_KEY=os.environ.get("SECRET_KEY") or "bench-only-secret-key-not-for-production",
        DEBUG="0",
        LOG_LEVEL="WARNING",
        ELBIA_PROVISION_DELAY="0",
        MEDIA_ROOT=str(OUT_DIR / "media"),
    )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_average() -> float:
    return os.getloadavg()[0]


def load_line() -> str:
    """The 1, 5 and 15-minute load averages, as uptime prints them."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


# --- database -----------------------------------------------------------------------------------


def _admin_url() -> str:
    return urllib.parse.urlparse(DATABASE_URL)._replace(path="/postgres").geturl()


def database_name() -> str:
    return urllib.parse.urlparse(DATABASE_URL).path.lstrip("/")


def ensure_database(*, reset: bool = False) -> None:
    """Create the benchmark database when missing; ``reset`` drops it first. Never touches another database."""
    import psycopg

    name = database_name()
    if not name.startswith("elbia_bench") and os.environ.get("BENCH_ALLOW_ANY_DATABASE") != "1":
        raise SystemExit(f"Refusing to reset or seed {name!r}: the benchmark database's name starts with elbia_bench.")
    with psycopg.connect(_admin_url(), autocommit=True) as connection:
        if reset:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


def setup_django() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def seeded() -> dict | None:
    """The marker row of a complete seed of this version, or None."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_seed') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT details FROM bench_seed WHERE version = %s", [SEED_VERSION])
        row = cursor.fetchone()
    return json.loads(row[0]) if row else None


def seed() -> dict:
    """Load the whole data set (see the module docstring) and write the marker; returns its details.

    The loads (a COPY of a million rows, index builds) take longer than the product's statement timeout
    (``DATABASE_STATEMENT_TIMEOUT``): they run on a connection without it, as a migration would.
    """
    from django.db import connection

    options = connection.settings_dict["OPTIONS"]
    connection.close()
    connection.settings_dict["OPTIONS"] = {**options, "options": "-c statement_timeout=0", "wait_timeout": None}
    try:
        return _seed()
    finally:
        connection.close()
        connection.settings_dict["OPTIONS"] = options


def _seed() -> dict:
    from django.db import connection

    started = time.monotonic()
    rng = random.Random(42)
    now = datetime.now(UTC)
    measured_id = _seed_resources(rng, now)
    _seed_functions_and_events(rng, now, measured_id)
    _seed_invoicing_accounts()
    _build_rollups(now)
    connection.close()
    import psycopg

    with psycopg.connect(DATABASE_URL, autocommit=True) as plain:
        for table in (
            "resources_resource", "billing_usageevent", "functions_function", "accounts_account",
            "billing_functionusageday", "billing_computeusageday", "billing_opencomputespans",
            "billing_opencomputespan",
        ):  # fmt: skip
            plain.execute(f"VACUUM (ANALYZE) {table}")
    details = {
        "resources": RESOURCES,
        "accounts": ACCOUNTS,
        "measured_resources": MEASURED_RESOURCES,
        "measured_functions": MEASURED_FUNCTIONS,
        "measured_events": MEASURED_EVENTS,
        "big_events": BIG_EVENTS,
        "usage_month": USAGE_MONTH.isoformat()[:7],
        "big_usage_month": BIG_USAGE_MONTH.isoformat()[:7],
        "invoice_accounts": INVOICE_ACCOUNTS,
        "events_per_invoice_account": EVENTS_PER_INVOICE_ACCOUNT,
        "seeded_at": now.isoformat(),
        "seconds": round(time.monotonic() - started),
    }
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_seed (version integer PRIMARY KEY, details text NOT NULL)")
        cursor.execute("INSERT INTO bench_seed VALUES (%s, %s)", [SEED_VERSION, json.dumps(details)])
    log(f"seeded in {details['seconds']}s")
    return details


def _copy(cursor, table: str, columns: str, rows) -> None:
    with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _resource_row(public_id, account_id, kind, name, region, instance_type, vpc_id, status, created, **extra) -> tuple:
    provisioned = created + timedelta(seconds=30) if status in ("active", "deleted", "deleting") else None
    values = {
        "public_id": public_id,
        "account_id": account_id,
        "type": kind,
        "name": name,
        "region": region,
        "instance_type": instance_type,
        "vpc_id": vpc_id,
        "cidr_block": "",
        "memory_mb": None,
        "tags": "{}",
        "status": status,
        "failure_reason": "Simulated provisioning failure." if status == "failed" else "",
        "created_at": created,
        "updated_at": created,
        "provisioning_started_at": created,
        "provisioned_at": provisioned,
        "failed_at": created + timedelta(seconds=30) if status == "failed" else None,
        "deleting_started_at": created + timedelta(days=1) if status in ("deleted", "deleting") else None,
        "deleted_at": created + timedelta(days=1, seconds=30) if status == "deleted" else None,
        "last_execution": None,
        "lifecycle_task_id": "",
        "requeue_count": 0,
        "provider_id": "",
        **extra,
    }
    return tuple(values[column] for column in RESOURCE_COLUMNS)


def _seed_resources(rng: random.Random, now: datetime) -> int:
    """Accounts, one VPC per account and region used, and compute instances; returns the measured account's id."""
    from django.db import connection

    from elbia.accounts.models import Account

    started = time.monotonic()
    owners = Account.objects.bulk_create(
        [Account(name=MEASURED)] + [Account(name=f"bench-account-{n:04d}") for n in range(1, ACCOUNTS)]
    )
    others = RESOURCES - MEASURED_RESOURCES
    per_account = [MEASURED_RESOURCES] + [
        others // (ACCOUNTS - 1) + (1 if n < others % (ACCOUNTS - 1) else 0) for n in range(ACCOUNTS - 1)
    ]
    regions = sorted(set(REGIONS))
    ids = iter(rng.sample(range(10**10), RESOURCES + ACCOUNTS * len(regions) + MEASURED_FUNCTIONS))
    columns = ", ".join(RESOURCE_COLUMNS)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'resources_resource' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        secondary = cursor.fetchall()
        for name, _ in secondary:
            cursor.execute(f'DROP INDEX "{name}"')
        created = now - timedelta(days=800)
        vpcs = [
            _resource_row(
                f"RES_{next(ids):010d}", owner.pk, "vpc", "default", region, "", None, "active", created,
                cidr_block="172.31.0.0/16",
            )
            for owner in owners
            for region in regions
        ]  # fmt: skip
        _copy(cursor, "resources_resource", columns, vpcs)
        cursor.execute("SELECT account_id, region, id FROM resources_resource WHERE type = 'vpc'")
        vpc_ids = {(account_id, region): pk for account_id, region, pk in cursor.fetchall()}

        def instances():
            for owner, count in zip(owners, per_account, strict=True):
                for _ in range(count):
                    region = rng.choice(REGIONS)
                    tags = {"env": rng.choice(ENVS), "team": rng.choice(TEAMS)}
                    yield _resource_row(
                        f"RES_{next(ids):010d}",
                        owner.pk,
                        "compute",
                        f"{rng.choice(TEAMS)}-{rng.randrange(10**6)}",
                        region,
                        rng.choice(INSTANCE_TYPES),
                        vpc_ids[owner.pk, region],
                        rng.choice(STATUSES),
                        now - timedelta(seconds=rng.randrange(730 * 86400)),
                        tags=json.dumps(tags),
                    )

        _copy(cursor, "resources_resource", columns, instances())
        log(f"copied {RESOURCES:,} instances and {len(vpcs):,} VPCs in {time.monotonic() - started:.0f}s")
        # The function resources of the measured account (the functions come next).
        function_created = now - timedelta(days=400)
        function_resources = [
            _resource_row(
                f"RES_{next(ids):010d}", owners[0].pk, "function", f"fn-{n:03d}", "us-east-1", "", None, "active",
                function_created, memory_mb=128 * (n % 8 + 1),
            )
            for n in range(MEASURED_FUNCTIONS)
        ]  # fmt: skip
        _copy(cursor, "resources_resource", columns, function_resources)
        for _name, definition in secondary:
            cursor.execute(definition)
        log(f"rebuilt {len(secondary)} indexes; {time.monotonic() - started:.0f}s so far")
    return owners[0].pk


def _seed_functions_and_events(rng: random.Random, now: datetime, account_id: int) -> None:
    """The measured account's functions (with tags) and its usage events of the current month."""
    from django.db import connection

    from functions.models import Function, FunctionTag
    from resources.models import Resource

    resources = dict(Resource.objects.filter(account_id=account_id, type="function").values_list("name", "id"))
    created = now - timedelta(days=400)
    functions = Function.objects.bulk_create(
        [
            Function(
                account_id=account_id,
                public_id=f"FUNC_{8_000_000_000 + n:010d}",
                resource_id=resources[f"fn-{n:03d}"],
                name=f"fn-{n:03d}",
                runtime=("Python 3.12", "Node.js 20", "Go 1.x")[n % 3],
                handler="app.handler",
                memory_mb=128 * (n % 8 + 1),
                tags=sorted(rng.sample(FUNCTION_TAGS, 1 + n % 2)),  # one or two: about 250 of 1,000 tagged api
                status=rng.choice(FUNCTION_STATUSES),
                created_at=created + timedelta(minutes=n),
                deployed_at=created + timedelta(minutes=n, seconds=5),
            )
            for n in range(MEASURED_FUNCTIONS)
        ]
    )
    FunctionTag.objects.bulk_create(
        [
            FunctionTag(account_id=account_id, function=function, tag=tag)
            for function in functions
            for tag in function.tags
        ]
    )
    with connection.cursor() as cursor:
        for prefix, month, count in (("seed", USAGE_MONTH, MEASURED_EVENTS), ("big", BIG_USAGE_MONTH, BIG_EVENTS)):
            month_start = datetime(month.year, month.month, 1, tzinfo=UTC)
            span = int((_next_month(month_start) - month_start).total_seconds())
            _copy(
                cursor,
                "billing_usageevent",
                EVENT_COLUMNS,
                (
                    (
                        account_id,
                        (function := functions[n % len(functions)]).pk,
                        f"{prefix}-{n}",
                        (moment := month_start + timedelta(seconds=rng.randrange(span))),
                        20 + rng.randrange(3000),
                        function.memory_mb,
                        moment,
                    )
                    for n in range(count)
                ),
            )
    log(
        f"{MEASURED_FUNCTIONS} functions, {MEASURED_EVENTS:,} usage events in {USAGE_MONTH:%Y-%m} and "
        f"{BIG_EVENTS:,} in {BIG_USAGE_MONTH:%Y-%m} in the measured account"
    )


def _next_month(moment: datetime) -> datetime:
    return (moment.replace(day=28) + timedelta(days=4)).replace(day=1)


def _build_rollups(now: datetime) -> None:
    """The daily rollups of everything COPY loaded: the close at the last midnight, then rebuilt from raw rows."""
    from billing.models import MeteringClose
    from billing.reconcile import reconcile
    from billing.rollups import midnight

    started = time.monotonic()
    MeteringClose.objects.update_or_create(pk=1, defaults={"through": midnight(now)})
    report = reconcile(fix=True, chunk=500)
    log(f"built the usage rollups of {report.repaired_accounts:,} accounts in {time.monotonic() - started:.0f}s")


def _seed_invoicing_accounts() -> None:
    """10,000 accounts created on the 1st of INVOICE_MONTH, each with a function and 100 events in it."""
    from django.db import connection

    from elbia.accounts.models import Account
    from functions.models import Function
    from resources.models import Resource

    started = time.monotonic()
    created = datetime(INVOICE_MONTH.year, INVOICE_MONTH.month, 1, tzinfo=UTC)
    accounts = Account.objects.bulk_create(
        [Account(name=f"bench-invoice-{n:05d}", created_at=created) for n in range(INVOICE_ACCOUNTS)], batch_size=5000
    )
    account_ids = [account.pk for account in accounts]
    functions = Function.objects.bulk_create(
        [
            Function(
                account_id=account_id,
                public_id=f"FUNC_{9_000_000_000 + n:010d}",
                name="worker",
                runtime="Python 3.12",
                handler="app.handler",
                memory_mb=128 * (n % 8 + 1),
                status="active",
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
    seconds_in_month = 31 * 24 * 3600
    with connection.cursor() as cursor:
        _copy(
            cursor,
            "billing_usageevent",
            EVENT_COLUMNS,
            (
                (
                    function.account_id,
                    function.pk,
                    f"e{n}",
                    (
                        moment := created
                        + timedelta(seconds=(function.account_id * 7919 + n * 26_777) % seconds_in_month)
                    ),
                    20 + (n * 37) % 3000,
                    function.memory_mb,
                    moment,
                )
                for function in functions
                for n in range(EVENTS_PER_INVOICE_ACCOUNT)
            ),
        )
    log(
        f"{INVOICE_ACCOUNTS:,} invoicing accounts with {INVOICE_ACCOUNTS * EVENTS_PER_INVOICE_ACCOUNT:,} events "
        f"in {time.monotonic() - started:.0f}s"
    )


def account_token(account_name: str = MEASURED) -> tuple[str, int]:
    """A fresh all-scopes token of the account's bench user with a huge own rate limit: (token, account id)."""
    from django.conf import settings

    from elbia.accounts.models import Account, User
    from elbia.accounts.services import token_issue

    account = Account.objects.get(name=account_name)
    user = account.users.first() or User.objects.create_user(username=f"bench-{account.pk}", account=account)
    issued = token_issue(user=user, scopes=list(settings.SCOPES), name="bench", rate_limit="1000000000/second")
    return issued.access_token, account.pk


def purge_queue() -> None:
    """Empty the Celery queue of the benchmark's Redis DB (created resources and invoices queue work)."""
    from elbia.celery import app

    app.control.purge()


# --- servers ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(
    *, workers: int = 2, settings: str = "bench.settings", app: str = "bench.wsgi:application"
) -> tuple[subprocess.Popen, int]:
    """gunicorn (sync workers, as the Procfile runs it) on 127.0.0.1 on a free port; waits for /healthz.

    ``bench.wsgi`` serves Django (the product and the Django floor) and the raw floor under ``/bench-raw/``.
    """
    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    server = subprocess.Popen(
        [
            str(gunicorn),
            app,
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": settings},
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            connection = HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return server, port
        except OSError:
            time.sleep(0.2)
    stop_process(server)
    raise SystemExit("gunicorn did not start")


def start_celery_worker(*, concurrency: int = 2) -> subprocess.Popen:
    """A real ``celery worker`` (prefork) on the benchmark's Redis DB; returns once it answers a ping."""
    celery = Path(sys.executable).with_name("celery")
    worker = subprocess.Popen(
        [
            str(celery), "--quiet", "-A", "elbia", "worker", "--pool", "prefork", "--concurrency", str(concurrency),
            "--queues", "elbia", "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
            "--hostname", f"bench-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "elbia.settings"},
        start_new_session=True,
    )  # fmt: skip
    from elbia.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.poll() is None:
        if app.control.ping(timeout=0.5):
            return worker
    stop_process(worker)
    raise SystemExit("the Celery worker did not start")


def stop_process(process: subprocess.Popen) -> None:
    """Stop a server started above (its whole process group), by its id."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


# --- load -------------------------------------------------------------------------------------------


def drive(
    *,
    port: int,
    method: str,
    requests: list[tuple[str, bytes | None]],
    headers: dict[str, str],
    count: int,
    threads: int = 4,
    time_cap: float = 30.0,
    expect: int = 200,
) -> dict:
    """Send ``count`` requests (cycling through ``requests``: (path, body)) from ``threads`` threads.

    Each thread keeps its connection open as long as the server allows (gunicorn's sync workers close
    it after each response; ``http.client`` then reconnects). Stops early after ``time_cap`` seconds.
    Runs in the load process (see ``LoadProcess``); returns p50/p99 latency (ms), requests/s and errors.
    """
    latencies: list[float] = []
    failures: dict[str, int] = {}
    lock = threading.Lock()
    issued = iter(range(count))
    began = time.perf_counter()
    deadline = began + time_cap

    def client() -> None:
        connection = HTTPConnection("127.0.0.1", port, timeout=120)
        while time.perf_counter() < deadline:
            with lock:
                number = next(issued, None)
            if number is None:
                break
            path, body = requests[number % len(requests)]
            started = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except OSError as error:
                connection.close()
                status = type(error).__name__
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if status != expect:
                    failures[str(status)] = failures.get(str(status), 0) + 1
        connection.close()

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": sum(failures.values()),
        "failures": failures,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else float("nan"),
        "req_per_s": len(latencies) / wall,
        "seconds": wall,
        "capped": len(latencies) < count,
    }


class LoadProcess:
    """The load generator in its own (spawned) process, so it never shares a CPU-bound GIL with the bench."""

    def __init__(self):
        import concurrent.futures
        import multiprocessing

        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )

    def run(self, **spec) -> dict:
        return self._pool.submit(drive, **spec).result()

    def close(self) -> None:
        self._pool.shutdown()


def machine() -> dict:
    """CPU model, cores, memory, PostgreSQL, Redis and Python versions of this machine."""
    import platform

    import psycopg
    import redis

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    with psycopg.connect(DATABASE_URL) as connection:
        postgres = connection.execute("SHOW server_version").fetchone()[0]
    redis_version = redis.Redis.from_url(REDIS_URL).info("server")["redis_version"]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory": f"{memory_kb / 1024 / 1024:.0f} GiB",
        "postgresql": postgres,
        "redis": redis_version,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }
