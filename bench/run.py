"""The benchmark suite: ``make bench``.

    .venv/bin/python bench/run.py [--reseed] [--only web|jobs] [--requests 400] [--threads 4]

1. Creates (``--reseed``: drops and recreates) the PostgreSQL database BENCH_DATABASE_URL (default
   postgres://postgres@127.0.0.1:5432/elbia_bench), migrates it and seeds it unless it already holds
   this version's seed (bench/common.py: 1,000,000 resources in 1,000 accounts, 50,000 in the measured
   one; functions; usage events; 10,000 accounts to invoice). Redis: BENCH_REDIS_URL (default DB 9).
2. Starts gunicorn (2 sync workers, 127.0.0.1, a free port) with bench/settings.py: the product's
   settings and URLs plus the floor (bench/floor.py) under /bench-floor/.
3. For each web scenario, from a separate load process (threads with keep-alive connections, a fixed
   number of requests, a time cap): the product's endpoint, then the floor's; p50/p99 latency and
   requests/s of both, and their ratio. The load average is printed before each.
4. The monthly invoice job for the 10,000 accounts (that month's invoices deleted first), in process.
5. Celery provisioning: a real ``celery worker`` (prefork, concurrency 2) at ELBIA_PROVISION_DELAY=0;
   N resources created through the service in one transaction (queued on commit); resources per
   second from the commit until all are active.
6. Writes bench/RESULTS.md (figures, machine, date, load averages) and bench/out/results.json.
"""

import argparse
import json
import sys
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

FILTER = json.dumps(
    {
        "region": "us-east-1",
        "status": {"$in": ["active", "pending"]},
        "tags.env": "prod",
        "created_at": {"$gte": "2025-01-01T00:00:00Z"},
    },
    separators=(",", ":"),
)
CREATE_BODY = {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default", "tags": {"bench": "create"}}
BUSY_LOAD = 1.0  # a load average above this before a measurement means the machine was not idle
DEEP_OFFSET = 45_000
# The goals (ratios in one run): web at least this share of the Django floor; retrieve and the first list
# page this share of the raw floor; usage flat (2M events at most this much slower than 200k) and within
# this multiple of a retrieve; the invoice job and provisioning at least these rates.
GOAL_FLOOR = 0.8
GOAL_RAW = 0.3
GOAL_USAGE_FLAT = 1.2
GOAL_USAGE_VS_RETRIEVE = 3.0
GOAL_INVOICES_PER_S = 2000
GOAL_PROVISIONED_PER_S = 200


def web_scenarios(*, account_id: int, run_id: str, requests: int) -> list[dict]:
    """Each scenario: key, label, path, sides (product, Django floor, raw floor where it has one), bodies, counts."""
    from bench.shapes import encode_cursor
    from functions.models import Function
    from resources.models import Resource

    resource = (
        Resource.objects.filter(account_id=account_id, type="compute", vpc__isnull=False)
        .order_by("-created_at")
        .values_list("public_id", flat=True)[1234]
    )
    # The keyset page at the deep offset's depth: the cursor of the row just before it.
    deep = (
        Resource.objects.filter(account_id=account_id)
        .exclude(status="deleted")
        .order_by("-created_at", "-id")
        .values_list("created_at", "id")[DEEP_OFFSET - 1]
    )
    functions = list(Function.objects.filter(account_id=account_id).values_list("public_id", flat=True)[:100])
    create = json.dumps(CREATE_BODY).encode()
    quoted = urllib.parse.quote(FILTER)

    def batches(side: str, count: int) -> list[bytes]:
        now = datetime.now(UTC)
        return [
            json.dumps(
                {
                    "events": [
                        {
                            "event_id": f"bench-{run_id}-{side}-{batch}-{n}",
                            "function": functions[n % len(functions)],
                            "timestamp": (now - timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                            "duration_ms": 20 + n % 3000,
                        }
                        for n in range(1000)
                    ]
                }
            ).encode()
            for batch in range(count)
        ]

    ingest = max(requests // 8, 20)
    usage, big = f"{common.USAGE_MONTH:%Y-%m}", f"{common.BIG_USAGE_MONTH:%Y-%m}"
    all_three = ("product", "floor", "raw")
    return [
        {"key": "list", "label": "GET /v1/resources?limit=50", "path": "resources?limit=50", "sides": all_three},
        {"key": "keyset", "label": f"GET /v1/resources?limit=50&cursor=… (row {DEEP_OFFSET:,})",
         "path": f"resources?limit=50&cursor={encode_cursor(*deep)}", "sides": all_three},
        {"key": "filtered", "label": "GET /v1/resources?limit=50&filter=…",
         "path": f"resources?limit=50&filter={quoted}"},
        {"key": "deep", "label": f"GET /v1/resources?limit=50&offset={DEEP_OFFSET}",
         "path": f"resources?limit=50&offset={DEEP_OFFSET}"},
        {"key": "retrieve", "label": "GET /v1/resources/{id}?expand=vpc", "path": f"resources/{resource}?expand=vpc",
         "sides": all_three},
        {"key": "create", "label": "POST /v1/resources", "path": "resources", "method": "POST", "body": create,
         "expect": 201},
        {"key": "functions", "label": "GET /v1/functions?limit=50&tag=api", "path": "functions?limit=50&tag=api"},
        {"key": "usage", "label": f"GET /v1/usage?month={usage} (50,000 resources, {common.MEASURED_EVENTS:,} events)",
         "path": f"usage?month={usage}", "sides": all_three},
        {"key": "usage_big", "label": f"GET /v1/usage?month={big} ({common.BIG_EVENTS:,} events)",
         "path": f"usage?month={big}", "sides": all_three},
        {"key": "ingest", "label": "POST /v1/usage/events (1,000 events)", "path": "usage/events", "method": "POST",
         "bodies": {side: batches(side, ingest + 5) for side in ("product", "floor")}, "count": ingest,
         "events_per_request": 1000},
    ]  # fmt: skip


PREFIXES = {"product": "/v1/", "floor": "/bench-floor/", "raw": "/bench-raw/"}


def measure_web(args, token: str, account_id: int, run_id: str) -> list[dict]:
    server, port = common.start_gunicorn(workers=args.workers)
    load = common.LoadProcess()
    results = []
    try:
        header = f"{'scenario':60} {'side':8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'n':>5} {'err':>4} {'load':>5}"
        print(f"\n{args.threads} client threads in a separate process, gunicorn with {args.workers} workers\n")
        print(header)
        for scenario in web_scenarios(account_id=account_id, run_id=run_id, requests=args.requests):
            if args.scenarios and scenario["key"] not in args.scenarios:
                continue
            row = {"key": scenario["key"], "label": scenario["label"]}
            for side in scenario.get("sides", ("product", "floor")):
                path = PREFIXES[side] + scenario["path"]
                bodies = scenario.get("bodies", {}).get(side) or [scenario.get("body")]
                requests = [(path, body) for body in bodies]
                spec = {
                    "port": port,
                    "method": scenario.get("method", "GET"),
                    "headers": {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                    "expect": scenario.get("expect", 200),
                    "threads": args.threads,
                }
                load.run(**spec, requests=requests[-5:], count=5, time_cap=30)  # warm-up (distinct bodies)
                loadavg = common.load_average()
                figures = load.run(
                    **spec, requests=requests[:-5] or requests, count=scenario.get("count", args.requests),
                    time_cap=args.time_cap,
                )  # fmt: skip
                figures["load"] = loadavg
                if "events_per_request" in scenario:
                    figures["events_per_s"] = figures["req_per_s"] * scenario["events_per_request"]
                row[side] = figures
                print(
                    f"{scenario['label']:60} {side:8} {figures['req_per_s']:8.1f} {figures['p50_ms']:8.1f} "
                    f"{figures['p99_ms']:8.1f} {figures['requests']:5d} {figures['errors']:4d} {loadavg:5.2f}"
                    + (f"  {figures['events_per_s']:,.0f} events/s" if "events_per_s" in figures else "")
                    + (f"  failures: {figures['failures']}" if figures["errors"] else ""),
                    flush=True,
                )
            row["ratio_rps"] = row["product"]["req_per_s"] / row["floor"]["req_per_s"]
            row["ratio_p50"] = row["product"]["p50_ms"] / row["floor"]["p50_ms"]
            if "raw" in row:
                row["ratio_raw"] = row["product"]["req_per_s"] / row["raw"]["req_per_s"]
            print(
                f"{'':60} {'ratio':8} {row['ratio_rps']:8.2f} {row['ratio_p50']:8.2f}  (product / Django floor)"
                + (f"; {row['ratio_raw']:.2f} of the raw floor" if "raw" in row else "")
            )
            results.append(row)
    finally:
        load.close()
        common.stop_process(server)
        clean_web_leftovers(account_id, run_id)
    return results


def clean_web_leftovers(account_id: int, run_id: str) -> None:
    """Remove what the write scenarios added, so every run measures the same data."""
    from billing.models import UsageEvent
    from resources.models import Resource

    created = Resource.objects.filter(account_id=account_id, tags__bench="create").delete()[0]
    events = UsageEvent.objects.filter(account_id=account_id, event_id__startswith=f"bench-{run_id}-").delete()[0]
    common.purge_queue()
    common.log(f"removed {created:,} created resources and {events:,} ingested events")


def measure_invoice_job() -> dict:
    from django.db import connection

    from billing.models import Invoice, InvoiceLine
    from billing.services import invoice_generate_missing
    from elbia.celery import app

    app.loader.import_default_modules()  # as in the worker that runs the job: its first message costs no imports
    InvoiceLine.objects.filter(invoice__period=common.INVOICE_MONTH).delete()
    Invoice.objects.filter(period=common.INVOICE_MONTH).delete()
    statements = []

    def count(execute, sql, params, many, context):
        statements.append(1)
        return execute(sql, params, many, context)

    loadavg = common.load_average()
    common.log(f"invoice job for {common.INVOICE_MONTH:%Y-%m} (load average {loadavg:.2f})")
    with connection.execute_wrapper(count):
        started = time.perf_counter()
        run = invoice_generate_missing(today=common.INVOICE_TODAY, month=common.INVOICE_MONTH)
        seconds = time.perf_counter() - started
    common.purge_queue()  # the PDF-rendering messages the job queued
    result = {
        "invoices": run.created,
        "seconds": seconds,
        "per_s": run.created / seconds,
        "queries": len(statements),
        "load": loadavg,
    }
    common.log(
        f"invoice job: {run.created:,} invoices in {seconds:.1f} s = {result['per_s']:,.0f} invoices/s, "
        f"{len(statements):,} queries"
    )
    return result


def measure_provisioning(count: int) -> dict:
    from django.db import transaction

    from resources import services
    from resources.models import Resource

    vpc = Resource.objects.get(account__name=common.PROVISIONING, type="vpc", region="us-east-1", status="active")
    created = Resource.objects.filter(account_id=vpc.account_id, tags__bench="provision")
    created.delete()
    common.purge_queue()
    worker = common.start_celery_worker(concurrency=2)
    try:
        loadavg = common.load_average()
        common.log(f"provisioning {count:,} resources with a Celery worker (load average {loadavg:.2f})")
        with transaction.atomic():
            for _ in range(count):
                services.resource_create(
                    account=vpc.account, region="us-east-1", instance_type="t3.micro", vpc=vpc,
                    tags={"bench": "provision"},
                )  # fmt: skip
            started = time.perf_counter()  # the commit makes them visible and sends the messages
        deadline = started + 600
        active = 0
        while time.perf_counter() < deadline:
            active = created.filter(status="active").count()
            if active == count or created.filter(status="failed").exists():
                break
            time.sleep(0.1)
        seconds = time.perf_counter() - started
    finally:
        common.stop_process(worker)
    failed = created.filter(status="failed").count()
    result = {"resources": count, "active": active, "failed": failed, "seconds": seconds,
              "per_s": active / seconds, "load": loadavg}  # fmt: skip
    common.log(f"provisioning: {active:,}/{count:,} active in {seconds:.1f} s = {result['per_s']:,.0f} resources/s")
    created.delete()
    common.purge_queue()
    return result


def goals(web: list[dict], job: dict | None, provision: dict | None) -> list[tuple[str, str, bool]]:
    """Each goal of the run: (what, the figure against its goal, met)."""
    found = []
    rows = {row["key"]: row for row in web}
    for row in web:
        found.append(
            (f"{row['key']}: product / Django floor (req/s)", f"{row['ratio_rps']:.2f} (goal ≥ {GOAL_FLOOR})",
             row["ratio_rps"] >= GOAL_FLOOR)
        )  # fmt: skip
    for key in ("retrieve", "list"):
        if key in rows and "ratio_raw" in rows[key]:
            ratio = rows[key]["ratio_raw"]
            found.append((f"{key}: product / raw floor (req/s)", f"{ratio:.2f} (goal ≥ {GOAL_RAW})", ratio >= GOAL_RAW))
    if "usage" in rows and "usage_big" in rows:
        flat = rows["usage_big"]["product"]["p50_ms"] / rows["usage"]["product"]["p50_ms"]
        found.append(
            ("usage: p50 at 2,000,000 events / at 200,000", f"{flat:.2f} (goal ≤ {GOAL_USAGE_FLAT})",
             flat <= GOAL_USAGE_FLAT)
        )  # fmt: skip
        if "retrieve" in rows:
            versus = rows["usage_big"]["product"]["p50_ms"] / rows["retrieve"]["product"]["p50_ms"]
            found.append(
                ("usage at 2,000,000 events: p50 / retrieve p50", f"{versus:.2f} (goal ≤ {GOAL_USAGE_VS_RETRIEVE})",
                 versus <= GOAL_USAGE_VS_RETRIEVE)
            )  # fmt: skip
    if job:
        found.append(
            ("monthly invoice job", f"{job['per_s']:,.0f} invoices/s (goal ≥ {GOAL_INVOICES_PER_S:,})",
             job["per_s"] >= GOAL_INVOICES_PER_S)
        )  # fmt: skip
    if provision:
        found.append(
            ("Celery provisioning, one worker",
             f"{provision['per_s']:,.0f} resources/s (goal ≥ {GOAL_PROVISIONED_PER_S})",
             provision["per_s"] >= GOAL_PROVISIONED_PER_S)
        )  # fmt: skip
    return found


def conditions(loads: list[float], cores: int) -> str:
    """What the load averages say about the run: never 'idle' when one of them was not."""
    low, high = min(loads, default=0.0), max(loads, default=0.0)
    text = f"Load average (1 minute) before the measurements: {low:.2f} – {high:.2f} on {cores} cores."
    if high > BUSY_LOAD:
        return text + (
            f" **Not an idle run**: above {BUSY_LOAD} the machine was busy (other processes, or the scenario before "
            "still decaying), so the absolute figures are low and noisy; the ratios, measured back to back under "
            "the same load, are the steadier signal."
        )
    return text + " The machine was idle throughout."


def write_results(path: Path, *, machine: dict, seed: dict, web: list[dict], job: dict | None, provision: dict | None,
                  args, started: datetime, loads: list[float], duration: str, start_load: str) -> None:  # fmt: skip
    lines = [
        "# Benchmark results",
        "",
        f"Taken {started:%Y-%m-%d %H:%M} UTC with `make bench` (bench/run.py; design in docs/bench.md); "
        f"the run took {duration}. At its start: {start_load}.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine['cpu']}, {machine['cores']} cores; memory {machine['memory']}; Linux {machine['kernel']}",
        f"- PostgreSQL {machine['postgresql']}, Redis {machine['redis']}, Python {machine['python']}",
        f"- gunicorn {args.workers} sync workers; load from {args.threads} client threads in a separate process "
        "(http.client, keep-alive where the server allows it)",
        "",
        "## Data",
        "",
        f"{seed['resources']:,} resources in {seed['accounts']:,} accounts, {seed['measured_resources']:,} of them "
        f"in the measured account, which also has {seed['measured_functions']} functions, "
        f"{seed['measured_events']:,} usage events in {seed.get('usage_month')} and {seed.get('big_events', 0):,} in "
        f"{seed.get('big_usage_month')}; {seed['invoice_accounts']:,} accounts to invoice with "
        f"{seed['events_per_invoice_account']} events each.",
        "",
    ]
    if web:
        lines += [
            "## Web: product and floors",
            "",
            "Django floor: a plain Django view sending the product's SQL and returning its JSON (bench/floor.py). "
            "Raw floor: the same SQL and JSON with psycopg 3 and orjson under the same gunicorn, no Django "
            "(bench/raw.py). Ratios are product / floor in requests per second (below 1: the product is slower). "
            "Load = 1-minute load average just before the product's and the Django floor's measurement.",
            "",
            "| scenario | product req/s | p50 ms | Django floor req/s | p50 ms | raw floor req/s | p50 ms "
            "| product / Django floor | product / raw floor | load |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in web:
            product, floor = row["product"], row["floor"]
            raw = row.get("raw")
            label = row["label"].replace("|", "\\|")
            lines.append(
                f"| {label} | {product['req_per_s']:,.1f} | {product['p50_ms']:.1f} "
                f"| {floor['req_per_s']:,.1f} | {floor['p50_ms']:.1f} "
                + (f"| {raw['req_per_s']:,.1f} | {raw['p50_ms']:.1f} " if raw else "| – | – ")
                + f"| {row['ratio_rps']:.2f} | "
                + (f"{row['ratio_raw']:.2f}" if raw else "–")
                + f" | {product['load']:.1f} / {floor['load']:.1f} |"
            )
        for row in web:
            if "events_per_s" in row["product"]:
                lines += [
                    "",
                    f"Metering ingestion: {row['product']['events_per_s']:,.0f} events/s through the product, "
                    f"{row['floor']['events_per_s']:,.0f} events/s through the floor.",
                ]
        errors = [f"{row['key']} {side}" for row in web for side in PREFIXES if side in row and row[side]["errors"]]
        capped = [f"{row['key']} {side}" for row in web for side in PREFIXES if side in row and row[side]["capped"]]
        if errors:
            lines += ["", f"Requests with an unexpected status: {', '.join(errors)}."]
        if capped:
            cap = f"Stopped by the time cap ({args.time_cap:.0f} s) before the request count: {', '.join(capped)}."
            lines += ["", cap]
        lines.append("")
    if job or provision:
        lines += ["## Jobs", "", "| what | figure | load |", "|---|---|---:|"]
        if job:
            lines.append(
                f"| monthly invoice job, {job['invoices']:,} accounts × 100 events, one process, from the rollups | "
                f"{job['seconds']:.1f} s = {job['per_s']:,.0f} invoices/s, {job['queries']:,} queries "
                f"| {job['load']:.1f} |"
            )
        if provision:
            lines.append(
                f"| Celery provisioning, pending → active, one prefork worker ×2, zero provider delay | "
                f"{provision['active']:,} resources in {provision['seconds']:.1f} s = {provision['per_s']:,.0f} "
                f"resources/s | {provision['load']:.1f} |"
            )
        lines.append("")
    lines += ["## Goals", "", "| goal | figure | met |", "|---|---|---|"]
    lines += [f"| {what} | {figure} | {'yes' if met else 'no'} |" for what, figure, met in goals(web, job, provision)]
    lines += ["", "## Conditions", "", conditions(loads, machine["cores"]), ""]
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reseed", action="store_true", help="drop the benchmark database and seed it again")
    parser.add_argument("--only", choices=("web", "jobs"), help="run only the web scenarios, or only the jobs")
    parser.add_argument(
        "--scenarios",
        type=lambda text: set(text.split(",")),
        help="only these web scenarios: list, keyset, filtered, deep, retrieve, create, functions, usage, usage_big, "
        "ingest",
    )
    parser.add_argument("--requests", type=int, default=400, help="requests per web scenario (fewer for the heavy)")
    parser.add_argument("--threads", type=int, default=4, help="client threads of the load process")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--time-cap", type=float, default=30.0, help="seconds per measurement at most")
    parser.add_argument("--provision", type=int, default=2000, help="resources for the Celery provisioning benchmark")
    parser.add_argument("--results", type=Path, default=common.ROOT / "bench" / "RESULTS.md")
    args = parser.parse_args()

    started = datetime.now(UTC)
    start_load = common.load_line()
    common.log(
        start_load + ("" if common.load_average() <= BUSY_LOAD else f": busy (above {BUSY_LOAD}), not an idle run")
    )
    seeded_now = None
    common.configure()
    common.ensure_database(reset=args.reseed)
    common.setup_django()
    seed = common.seeded()
    if seed is None:
        common.log("seeding (a few minutes; later runs reuse the data)")
        if not args.reseed:  # an older or unfinished seed: start again from an empty database
            from django.db import connections

            connections.close_all()
            common.ensure_database(reset=True)
            common.setup_django()
        seed = common.seed()
        seeded_now = seed["seconds"]
    else:
        common.log(f"reusing the data seeded at {seed['seeded_at']}")
    machine = common.machine()
    common.log(
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory']}; PostgreSQL {machine['postgresql']}, "
        f"Redis {machine['redis']}, Python {machine['python']}"
    )
    token, account_id = common.account_token()
    run_id = f"{int(time.time())}"
    web = measure_web(args, token, account_id, run_id) if args.only != "jobs" else []
    job = measure_invoice_job() if args.only != "web" else None
    provision = measure_provisioning(args.provision) if args.only != "web" else None
    loads = [row[side]["load"] for row in web for side in PREFIXES if side in row]
    loads += [item["load"] for item in (job, provision) if item]
    elapsed = (datetime.now(UTC) - started).seconds
    duration = f"{elapsed} s" + (f", of which {seeded_now} s seeding" if seeded_now is not None else " (seed reused)")
    write_results(args.results, machine=machine, seed=seed, web=web, job=job, provision=provision, args=args,
                  started=started, loads=loads, duration=duration, start_load=start_load)  # fmt: skip
    for what, figure, met in goals(web, job, provision):
        print(f"{'met ' if met else 'MISS'} {what}: {figure}")
    print(conditions(loads, machine["cores"]))
    (common.OUT_DIR / "results.json").write_text(
        json.dumps({"machine": machine, "web": web, "job": job, "provision": provision}, indent=2, default=str)
    )
    common.log(f"wrote {args.results} in {(datetime.now(UTC) - started).seconds} s")


if __name__ == "__main__":
    main()
