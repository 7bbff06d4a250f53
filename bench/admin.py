"""Benchmark of the admin on big tables (PostgreSQL): every list, its filters and searches, timed and counted.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/elbia_adm_bench .venv/bin/python bench/admin.py

1. Migrates the database named by DATABASE_URL (created when missing) and, unless it already holds them,
   seeds with ``INSERT ... SELECT generate_series`` 100,000 accounts (one user and two API tokens each),
   1,000,000 resources,
   100,000 functions, 3,000,000 usage events, 1,200,000 invoices (12 months of every account) and
   3,000,000 audit events; a tenth of the resources, usage and audit events belong to one big account.
   Then ANALYZE and VACUUM, as a database in steady state.
2. Opens each admin page through Django's test client as a staff superuser (``--repeat`` times after a
   warm-up) and prints the median and worst time and the number of SQL queries.
3. Prints PostgreSQL's plan for the unfiltered list query of the biggest tables.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "elbia.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production")

MARKER = "bench-admin-000000"  # name of the big account: its presence means the data is seeded
ACCOUNTS = 100_000
RESOURCES = 1_000_000
FUNCTIONS = 100_000
USAGE_EVENTS = 3_000_000
MONTHS = 12
AUDIT_EVENTS = 3_000_000
TOKENS_PER_ACCOUNT = 2

SEED = [
    # accounts, one user each
    f"""INSERT INTO accounts_account (name, created_at)
        SELECT 'bench-admin-' || lpad(i::text, 6, '0'), now() - interval '400 days' + i * interval '1 minute'
        FROM generate_series(0, {ACCOUNTS - 1}) i""",
    """INSERT INTO accounts_user (password, is_superuser, username, first_name, last_name, email, is_staff,
                                  is_active, date_joined, account_id)
        SELECT '!', false, 'user-' || a.id, '', '', 'user-' || a.id || '@example.com', false, true, a.created_at, a.id
        FROM accounts_account a WHERE a.name LIKE 'bench-admin-%'""",
    # the account of row i: the big account for one row in ten, else spread over all accounts
    """CREATE TEMP TABLE bench_base AS SELECT min(id) AS first, count(*) AS n FROM accounts_account
        WHERE name LIKE 'bench-admin-%'""",
    f"""INSERT INTO resources_resource (public_id, type, name, region, instance_type, cidr_block, tags, status,
            failure_reason, created_at, updated_at, account_id, lifecycle_task_id, requeue_count)
        SELECT 'RES_' || lpad(i::text, 10, '0'), 'compute', 'srv-' || i,
               (ARRAY['us-east-1','us-west-2','eu-west-1','eu-central-1'])[1 + i % 4],
               (ARRAY['t3.micro','m5.large','c5.large'])[1 + i % 3], '', '{{}}',
               (ARRAY['active','active','active','active','active','active','failed','deleted'])[1 + i % 8],
               '', now() - ({RESOURCES} - i) * interval '10 seconds', now(),
               CASE WHEN i % 10 = 0 THEN b.first ELSE b.first + i % b.n END, '', 0
        FROM generate_series(1, {RESOURCES}) i, bench_base b""",
    f"""INSERT INTO functions_function (public_id, name, runtime, handler, memory_mb, timeout_s, region, tags,
            environment, status, failure_reason, created_at, updated_at, account_id, lifecycle_task_id, requeue_count)
        SELECT 'FUNC_' || lpad(i::text, 10, '0'), 'fn-' || i, 'Node.js 20', 'index.handler', 128, 3, 'us-east-1',
               '[]', '{{}}', (ARRAY['active','active','active','failed'])[1 + i % 4], '',
               now() - ({FUNCTIONS} - i) * interval '1 minute', now(), b.first + i % b.n, '', 0
        FROM generate_series(1, {FUNCTIONS}) i, bench_base b""",
    f"""INSERT INTO billing_usageevent (event_id, timestamp, duration_ms, memory_mb, received_at, account_id,
            function_id)
        SELECT 'ev-' || i, now() - ({USAGE_EVENTS} - i) * interval '1 second', 100 + i % 900, 128,
               now() - ({USAGE_EVENTS} - i) * interval '1 second', f.account_id, f.id
        FROM generate_series(1, {USAGE_EVENTS}) i
        JOIN functions_function f ON f.public_id = 'FUNC_' || lpad((1 + i % {FUNCTIONS})::text, 10, '0')""",
    f"""INSERT INTO billing_invoice (public_id, period, date, status, amount_cents, currency, pdf, pdf_status,
            created_at, account_id)
        SELECT 'INV_' || lpad((m * {ACCOUNTS} + a.id - b.first)::text, 10, '0'),
               (date_trunc('month', now()) - (m + 1) * interval '1 month')::date,
               (date_trunc('month', now()) - m * interval '1 month' - interval '1 day')::date,
               (ARRAY['paid','paid','open','void'])[1 + (a.id % 4)::int], 1000 + a.id % 5000, 'USD', '', '',
               date_trunc('month', now()) - m * interval '1 month', a.id
        FROM generate_series(0, {MONTHS - 1}) m, accounts_account a, bench_base b
        WHERE a.name LIKE 'bench-admin-%'""",
    f"""INSERT INTO accounts_apitoken (account_id, user_id, name, scopes, token_family, rate_limit, created_at,
            expires_at, revoked_at)
        SELECT u.account_id, u.id, 'token-' || t, 'resources:read', gen_random_uuid(), '',
               u.date_joined + t * interval '1 day', now() + interval '30 days',
               CASE WHEN t = 1 THEN now() END
        FROM accounts_user u, generate_series(1, {TOKENS_PER_ACCOUNT}) t WHERE u.account_id IS NOT NULL""",
    f"""INSERT INTO audit_auditevent (created_at, actor_type, actor, action, object_type, object_id, changed_fields,
            ip_address, request_id, account_id)
        SELECT now() - ({AUDIT_EVENTS} - i) * interval '100 milliseconds',
               (ARRAY['token','token','token','user','staff'])[1 + i % 5], 'token ''ci'' of user',
               (ARRAY['resource.create','resource.delete','resource.update','function.create','function.update',
                      'apitoken.create','invoice.mark_paid','usage.create'])[1 + i % 8],
               'resource', 'RES_' || lpad((1 + i % {RESOURCES})::text, 10, '0'), '["name"]', '203.0.113.7',
               'req_' || md5(i::text), CASE WHEN i % 10 = 0 THEN b.first ELSE b.first + i % b.n END
        FROM generate_series(1, {AUDIT_EVENTS}) i, bench_base b""",
]

TABLES = (
    "accounts_account",
    "accounts_user",
    "accounts_apitoken",
    "resources_resource",
    "functions_function",
    "billing_usageevent",
    "billing_invoice",
    "audit_auditevent",
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def seed() -> None:
    from django.db import connection

    from elbia.accounts.models import Account

    if Account.objects.filter(name=MARKER).exists():
        log("data already seeded")
        return
    with connection.cursor() as cursor:
        for statement in SEED:
            started = time.monotonic()
            cursor.execute(statement)
            log(f"{statement.split()[2]}: {cursor.rowcount} rows in {time.monotonic() - started:.0f}s")
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"VACUUM ANALYZE {table}")
    log("vacuumed and analyzed")


def scenarios() -> list[tuple[str, str]]:
    from elbia.accounts.models import Account

    big = Account.objects.get(name=MARKER).pk
    small = Account.objects.get(name="bench-admin-050000").pk
    return [
        ("accounts", "/admin/accounts/account/"),
        ("accounts: search a name", "/admin/accounts/account/?q=bench-admin-04242"),
        ("accounts: search a member's email", f"/admin/accounts/account/?q=user-{small}@example.com"),
        ("account page (links, latest events)", f"/admin/accounts/account/{big}/change/"),
        ("users", "/admin/accounts/user/"),
        ("users: search an email", f"/admin/accounts/user/?q=user-{small}@example.com"),
        ("API tokens", "/admin/accounts/apitoken/"),
        ("API tokens: revoked", "/admin/accounts/apitoken/?status=revoked"),
        ("API tokens: an account", f"/admin/accounts/apitoken/?account={small}"),
        ("resources", "/admin/resources/resource/"),
        ("resources: page 500", "/admin/resources/resource/?p=500"),
        ("resources: status=failed", "/admin/resources/resource/?status=failed"),
        ("resources: region + instance type", "/admin/resources/resource/?region=eu-west-1&instance_type=m5.large"),
        ("resources: big account", f"/admin/resources/resource/?account={big}"),
        ("resources: small account", f"/admin/resources/resource/?account={small}"),
        ("resources: search a public ID", "/admin/resources/resource/?q=RES_0000424242"),
        ("resources: search a name", "/admin/resources/resource/?q=srv-424242"),
        ("functions", "/admin/functions/function/"),
        ("functions: status=failed", "/admin/functions/function/?status=failed"),
        ("functions: search a public ID", "/admin/functions/function/?q=FUNC_0000004242"),
        ("functions: search a name", "/admin/functions/function/?q=fn-4242"),
        ("usage events", "/admin/billing/usageevent/"),
        ("usage events: page 1000", "/admin/billing/usageevent/?p=1000"),
        ("usage events: big account", f"/admin/billing/usageevent/?account={big}"),
        ("usage events: a function", "/admin/billing/usageevent/?q=FUNC_0000004242"),
        ("usage events: today", "/admin/billing/usageevent/?timestamp__gte=" + _midnight()),
        ("invoices", "/admin/billing/invoice/"),
        ("invoices: open", "/admin/billing/invoice/?status=open"),
        ("invoices: a small account", f"/admin/billing/invoice/?account={small}"),
        ("invoices: search a public ID", "/admin/billing/invoice/?q=INV_0000424242"),
        ("invoices: search an account name", "/admin/billing/invoice/?q=bench-admin-050000"),
        ("audit events", "/admin/audit/auditevent/"),
        ("audit events: page 1000", "/admin/audit/auditevent/?p=1000"),
        ("audit events: action", "/admin/audit/auditevent/?action=invoice.mark_paid"),
        ("audit events: actor type staff", "/admin/audit/auditevent/?actor_type=staff"),
        ("audit events: big account", f"/admin/audit/auditevent/?account={big}"),
        ("audit events: small account", f"/admin/audit/auditevent/?account={small}"),
        ("audit events: object ID", "/admin/audit/auditevent/?q=RES_0000424242"),
        ("audit events: request ID", "/admin/audit/auditevent/?q=req_" + _md5("4242")),
        ("audit events: account name", "/admin/audit/auditevent/?q=bench-admin-050000"),
    ]


def _midnight() -> str:
    from urllib.parse import quote

    from django.utils import timezone

    return quote(str(timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)))


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()


def measure(repeat: int) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from elbia.accounts.models import User

    staff, _ = User.objects.get_or_create(username="bench-staff", defaults={"is_staff": True, "is_superuser": True})
    client = Client()
    client.force_login(staff)
    print(f"\n{'page':44} {'p50 ms':>8} {'max ms':>8} {'queries':>8}")
    for label, url in scenarios():
        client.get(url)
        timings, queries = [], 0
        for _ in range(repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
            queries = len(captured)
        print(f"{label:44} {statistics.median(timings):8.1f} {max(timings):8.1f} {queries:8d}", flush=True)


def plans() -> None:
    from django.db import connection

    from billing.models import UsageEvent
    from elbia.audit.models import AuditEvent
    from resources.models import Resource

    for queryset in (
        Resource.objects.select_related("account").order_by("-id")[:50],
        UsageEvent.objects.select_related("account", "function").order_by("-id")[:50],
        AuditEvent.objects.select_related("account").order_by("-created_at", "-id")[:50],
    ):
        sql, params = queryset.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}", params)
            print("\n" + "\n".join(row[0] for row in cursor.fetchall()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("Set DATABASE_URL to a PostgreSQL database, e.g. postgres://postgres@127.0.0.1:5432/elbia_adm_bench")
    ensure_database(url)

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    seed()
    measure(args.repeat)
    plans()


if __name__ == "__main__":
    main()
