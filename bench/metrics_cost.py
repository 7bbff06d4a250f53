"""What the request metrics cost on the retrieve scenario: ``GET /v1/resources/{id}?expand=vpc`` with and without
``MetricsMiddleware``, in one process, the two interleaved round after round so that the machine's load
weighs on both alike.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/elbia_metrics_cost REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/metrics_cost.py [--requests 1000] [--rounds 6]

The database is created and migrated if needed; one account, one resource and a token are made. The values
are recorded in multiprocess mode (files under PROMETHEUS_MULTIPROC_DIR), as gunicorn records them. Prints
the median time per request of each side and their ratio, then what the middleware alone adds to a request
(microseconds, timed on its own: the difference above is within the noise of a loaded machine).
"""

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="elbia-metrics-cost-"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "elbia.settings")
os.environ.setdefault("SECRET_KEY", "metrics-cost-" + uuid.uuid4().hex)
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

METRICS = "elbia.observability.http.MetricsMiddleware"


def prepare() -> tuple[str, str]:
    """Migrate; an account with one resource; (its bearer token, the retrieve path)."""
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    name = f"cost-{uuid.uuid4().hex[:8]}"
    call_command("create_account", username=name, email=f"{name}@example.com", password=uuid.uuid4().hex)
    out = io.StringIO()
    call_command("issue_token", name, "--scopes", "resources:read resources:write", "--json", stdout=out)
    token = json.loads(out.getvalue())["access_token"]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default"}
    created = client.post("/v1/resources", body, content_type="application/json")
    assert created.status_code == 201, created.content
    return token, f"/v1/resources/{created.json()['id']}?expand=vpc"


def timed(token: str, path: str, requests: int) -> list[float]:
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    for _ in range(20):  # warm: the token cache, the middleware chain
        assert client.get(path).status_code == 200
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get(path)
        times.append(time.perf_counter() - started)
    return times


def middleware_alone(path: str, calls: int = 20000) -> float:
    """Microseconds ``MetricsMiddleware`` adds to one request: a resolved request, a 200, nothing else."""
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.urls import resolve

    from elbia.observability.http import MetricsMiddleware

    request = RequestFactory().get(path)
    request.resolver_match = resolve(path.split("?")[0])
    response = HttpResponse(b"{}")
    bare, measured = (lambda request: response), MetricsMiddleware(lambda request: response)
    best = {}
    for name, handler in (("bare", bare), ("measured", measured)) * 3:
        started = time.perf_counter()
        for _ in range(calls):
            handler(request)
        best[name] = min(best.get(name, float("inf")), (time.perf_counter() - started) / calls)
    return (best["measured"] - best["bare"]) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.test.utils import override_settings

    token, path = prepare()
    with_metrics = list(settings.MIDDLEWARE)
    without_metrics = [name for name in with_metrics if name != METRICS]
    assert METRICS in with_metrics
    sides = {"with metrics": [], "without": []}
    for _ in range(args.rounds):
        for side, middleware in (("with metrics", with_metrics), ("without", without_metrics)):
            with override_settings(MIDDLEWARE=middleware):
                sides[side].extend(timed(token, path, args.requests))
    medians = {side: statistics.median(times) * 1000 for side, times in sides.items()}
    for side, median in medians.items():
        print(f"{side:>13}: median {median:.3f} ms over {len(sides[side])} requests")
    print(f"ratio with/without: {medians['with metrics'] / medians['without']:.4f}")
    added = middleware_alone(path)
    share = added / 10 / medians["without"]  # µs over ms, as a percentage
    print(f"the middleware alone: {added:.1f} µs per request ({share:.2f} % of a retrieve here)")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
