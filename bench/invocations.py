"""Invocations through the API, end to end: ``make bench-invocations``.

    .venv/bin/python bench/invocations.py [--runs 100] [--seconds 20] [--threads 4]

1. Uses the database BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/elbia_bench_invocations:
   migrated, no seed needed) and the Redis DB BENCH_REDIS_URL, an account of its own and a token with a
   rate limit out of the way.
2. Starts the runner (``manage.py run_runtime``, environments kept 300 s) and gunicorn with **one** sync
   worker (the Procfile's web process, at one worker) pointed at it.
3. For Python 3.11 and Node.js 20, an empty handler (``return None`` / ``async () => null``), each
   ``POST /v1/functions/{id}/invocations`` with the event ``{}`` from a client process, one at a time:
   - warm: ``--runs`` invocations of one function (after one that starts its environment);
   - cold: ``--runs`` functions, each invoked once (a new function is a new environment: the
     interpreter starts and loads the handler in the sandbox);
   - floor: the same empty handler's language run by a bare interpreter in a plain subprocess
     (``python3 -I -S -c pass``, ``node -e 0``), started the same way the runner starts one (fork and
     exec, waiting for its exit), without the sandbox or any HTTP.
   p50 and p99 of the client's time, in milliseconds.
4. Throughput: ``--threads`` clients invoking one warm Python function for ``--seconds``: invocations
   per second of the one web worker (each run, its metering and its row included).
5. Prints the figures and writes bench/INVOCATIONS.md and bench/out/invocations.json.
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/elbia_bench_invocations")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

ACCOUNT = "bench-invocations"
EMPTY = {
    "Python 3.11": ("app.handler", "app.py", "def handler(event, context):\n    return None\n"),
    "Node.js 20": ("index.handler", "index.mjs", "export const handler = async () => null;\n"),
}
FLOORS = {"Python 3.11": ["-I", "-S", "-c", "pass"], "Node.js 20": ["-e", "0"]}


def start_runner() -> tuple[subprocess.Popen, int]:
    runner = subprocess.Popen(
        [sys.executable, "manage.py", "run_runtime", "--port", "0"],
        cwd=common.ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "elbia.settings", "ELBIA_RUNTIME_IDLE_SECONDS": "300"},
        start_new_session=True,
    )
    line = runner.stdout.readline()
    if not line.startswith("Runner listening on 127.0.0.1:"):
        common.stop_process(runner)
        raise SystemExit(f"the runner did not start: {line!r}")
    return runner, int(line.split(":")[1].split()[0])


def setup_account() -> tuple[str, object]:
    from django.conf import settings

    from elbia.accounts.models import Account, User
    from elbia.accounts.services import token_issue

    account, _ = Account.objects.get_or_create(name=ACCOUNT)
    user = account.users.first() or User.objects.create_user(username=f"bench-{account.pk}", account=account)
    issued = token_issue(user=user, scopes=list(settings.SCOPES), name="bench", rate_limit="1000000000/second")
    return issued.access_token, account


def empty_functions(account, runtime: str, count: int, tag: str) -> list[str]:
    """``count`` active functions of ``runtime`` with the empty handler (deployment is not what is measured)."""
    import uuid

    from functions.models import Function, FunctionStatus
    from functions.services import function_create

    handler, path, source = EMPTY[runtime]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(path, source)
    archive = buffer.getvalue()
    ids = [
        function_create(
            account=account, name=f"{tag}-{uuid.uuid4().hex[:12]}", runtime=runtime, handler=handler, code=archive
        ).public_id
        for _ in range(count)
    ]
    Function.objects.filter(public_id__in=ids).update(status=FunctionStatus.ACTIVE)
    return ids


def invoke_paths(function_ids: list[str]) -> list[tuple[str, bytes]]:
    return [(f"/v1/functions/{function_id}/invocations", b"{}") for function_id in function_ids]


def floor(runtime: str, runs: int) -> dict:
    from functions.runtime.environments import interpreter

    executable = interpreter(runtime)
    latencies = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([executable, *FLOORS[runtime]], check=True)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    return {
        "requests": runs,
        "errors": 0,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(runs - 1, int(runs * 0.99))] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()

    common.configure()
    common.ensure_database()
    common.setup_django()
    token, account = setup_account()
    runner, runner_port = start_runner()
    os.environ["ELBIA_RUNNER_PORT"] = str(runner_port)
    server, port = common.start_gunicorn(workers=1)
    load = common.LoadProcess()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    rows: list[dict] = []
    try:
        for runtime in EMPTY:
            warm_id = empty_functions(account, runtime, 1, "warm")
            load.run(port=port, method="POST", requests=invoke_paths(warm_id), headers=headers, count=1, threads=1)
            for series, ids in (
                ("warm", warm_id),
                ("cold", empty_functions(account, runtime, args.runs, "cold")),
            ):
                common.log(f"{runtime} {series}: {common.load_line()}")
                result = load.run(
                    port=port, method="POST", requests=invoke_paths(ids), headers=headers, count=args.runs,
                    threads=1, time_cap=600,
                )  # fmt: skip
                series_name = f"{series}, POST .../invocations"
                rows.append({"runtime": runtime, "series": series_name, "load": common.load_line(), **result})
            common.log(f"{runtime} floor: {common.load_line()}")
            rows.append({"runtime": runtime, "series": "floor, bare interpreter in a plain subprocess",
                         "load": common.load_line(), **floor(runtime, args.runs)})  # fmt: skip
        warm_id = empty_functions(account, "Python 3.11", 1, "throughput")
        load.run(port=port, method="POST", requests=invoke_paths(warm_id), headers=headers, count=1, threads=1)
        common.log(f"throughput: {common.load_line()}")
        throughput = load.run(
            port=port, method="POST", requests=invoke_paths(warm_id), headers=headers, count=10**9,
            threads=args.threads, time_cap=args.seconds,
        )  # fmt: skip
        throughput["load"] = common.load_line()
    finally:
        load.close()
        common.stop_process(server)
        common.stop_process(runner)
        common.purge_queue()  # the deployments function_create queued (no worker runs here)
    machine = common.machine()
    report(rows, throughput, machine, args)


def report(rows: list[dict], throughput: dict, machine: dict, args) -> None:
    taken = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Invocation latency through the API",
        "",
        f"Taken {taken} with `.venv/bin/python bench/invocations.py --runs {args.runs} --seconds {args.seconds:g} "
        f"--threads {args.threads}` (`make bench-invocations`; method in the script's docstring): an empty "
        f"handler, `POST /v1/functions/{{id}}/invocations` with `{{}}` through gunicorn (one sync worker) and the "
        f"runner, one request at a time from a client process. {machine['cores']} CPUs ({machine['cpu']}), "
        f"Linux {machine['kernel']}, PostgreSQL {machine['postgresql']}, Redis {machine['redis']}. Milliseconds, "
        "measured by the client; load = load averages (1, 5, 15 min) before each series.",
        "",
        "| runtime | series | p50 ms | p99 ms | runs | errors | load |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['runtime']} | {row['series']} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['requests']} "
            f"| {row['errors']} | {row['load'].removeprefix('load average ')} |"
        )
    lines += [
        "",
        f"Throughput: {throughput['req_per_s']:.1f} invocations/s of one web worker ({args.threads} clients, "
        f"{throughput['requests']} invocations in {throughput['seconds']:.1f} s, {throughput['errors']} errors; "
        f"p50 {throughput['p50_ms']:.1f} ms, p99 {throughput['p99_ms']:.1f} ms; "
        f"{throughput['load'].removeprefix('load average ')}).",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    (common.ROOT / "bench" / "INVOCATIONS.md").write_text(text)
    (common.OUT_DIR / "invocations.json").write_text(
        json.dumps({"rows": rows, "throughput": throughput, "machine": machine}, indent=2, default=str)
    )


if __name__ == "__main__":
    main()
