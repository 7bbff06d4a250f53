"""The local runtime's latency: ``.venv/bin/python bench/runtime.py [--runs 200]``.

For Python 3.11 and Node.js 20, an empty handler (``return None``):

- warm: one environment, ``--runs`` invocations in a row, through the runner service (HTTP on loopback, as
  the web and worker processes call it) and through the pool in process (the runner's own share);
- cold: ``--runs`` invocations each in a new environment (start, load, invoke), through the pool;
- floor: the bare interpreter (``python3.11 -I -S -c pass`` / ``node -e 0``) started the same way, through
  the launcher into the same sandbox with the same limits, until it exits; and started plainly
  (``subprocess.run``), without the sandbox.

Prints p50/p99 (ms) of each with the load average before each series, and writes them to bench/RUNTIME.md.
Needs no database: the code goes to the code storage (``var/media/code`` by default) and the runner is
started on a free port.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "elbia.settings")
os.environ.setdefault("DEBUG", "1")

import django

django.setup()

from functions.code import code_store  # noqa: E402
from functions.runtime.environments import Environment, FunctionSpec, Pool, host_isolation, interpreter  # noqa: E402
from functions.runtime.runner import runtime_invoke  # noqa: E402
from tests.functions.code_archives import zip_of  # noqa: E402

EMPTY = {
    "Python 3.11": ("app.handler", {"app.py": "def handler(event, context):\n    return None\n"}),
    "Node.js 20": ("index.handler", {"index.mjs": "export const handler = async () => null;\n"}),
}
BARE = {"Python 3.11": ["-I", "-S", "-c", "pass"], "Node.js 20": ["-e", "0"]}


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):7.2f}  p99 {p99:7.2f}  (n={len(ordered)})"


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


ROWS: list[str] = []


def series(label: str, runs: int, action) -> list[float]:
    before = load()
    print(f"  {label:<46} load {before:<15}", end="", flush=True)
    samples = sorted(timed(action) for _ in range(runs))
    print(percentiles(samples), flush=True)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    ROWS.append(f"| {RUNTIME} | {label} | {statistics.median(samples):.2f} | {p99:.2f} | {len(samples)} | {before} |")
    return samples


RUNTIME = ""


def write_results(isolation: dict, runs: int) -> None:
    lines = [
        "# Local runtime latency",
        "",
        f"Taken {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `.venv/bin/python bench/runtime.py "
        f"--runs {runs}` (design in docs/functions-runtime.md), an empty handler, {os.cpu_count()} CPUs, "
        f"{platform.system()} {platform.release()}; sandbox: root {isolation['root']}, namespaces "
        f"{isolation['namespaces']}. Milliseconds, measured by the caller; load = load averages (1, 5, 15 min) "
        "before each series.",
        "",
        "| runtime | series | p50 ms | p99 ms | runs | load |",
        "|---|---|---:|---:|---:|---|",
        *ROWS,
        "",
    ]
    Path(__file__).with_name("RUNTIME.md").write_text("\n".join(lines))


def spec_for(runtime: str) -> FunctionSpec:
    handler, files = EMPTY[runtime]
    sha256, _ = code_store(zip_of(files))
    return FunctionSpec("FUNC_0000000001", "empty", runtime, handler, 128, 3, "us-east-1", sha256)


def start_runner() -> tuple[subprocess.Popen, int]:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_runtime", "--port", "0"],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    return process, int(line.split(":")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    runs = parser.parse_args().runs
    isolation = host_isolation()
    print(f"sandbox: {isolation} on {os.cpu_count()} CPUs")
    runner, port = start_runner()
    try:
        global RUNTIME
        for runtime in EMPTY:
            RUNTIME = runtime
            spec = spec_for(runtime)
            function = SimpleNamespace(**vars(spec) | {"environment": {}})
            print(runtime)
            pool = Pool(max_environments=2, idle_seconds=600)
            series(
                "warm, runner service (HTTP)",
                runs,
                lambda function=function: runtime_invoke(function, b"{}", uuid.uuid4().hex, port=port),
            )
            series(
                "warm, pool in process", runs, lambda spec=spec, pool=pool: pool.invoke(spec, b"{}", uuid.uuid4().hex)
            )

            def cold(pool=pool, spec=spec):
                outcome = pool.invoke(spec, b"{}", uuid.uuid4().hex)
                assert outcome.ok and outcome.cold, outcome
                pool.close()  # the next one starts a new environment

            pool.close()
            series("cold, pool in process (start + load + invoke)", runs, cold)
            bare = [interpreter(runtime), *BARE[runtime]]

            def floor(spec=spec, bare=bare):
                environment = Environment(spec)
                environment.spawn(bare, {"PATH": "/usr/bin:/bin"})
                environment.process.wait()
                environment.kill()

            series(f"floor, bare {' '.join(BARE[runtime])} in the sandbox", runs, floor)
            series("floor, bare, plain subprocess", runs, lambda bare=bare: subprocess.run(bare, check=True))
            pool.close()
    finally:
        runner.terminate()
        runner.wait(timeout=30)
    write_results(isolation, runs)


if __name__ == "__main__":
    main()
