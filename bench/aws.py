"""The AWS provider against an AWS API emulator: ``make bench-aws``.

    .venv/bin/python bench/aws.py [--latency 20] [--count 200] [--concurrency 1]

1. Starts ``moto_server`` (moto in server mode, a separate process on a free loopback port) and creates
   the Lambda execution role in it; points Elbia at it (``ELBIA_PROVIDER=aws``, ``ELBIA_AWS_ENDPOINT_URL``,
   moto's own machine image) with ``ELBIA_PROVISION_DELAY=0`` (the first look at a booting instance
   after 0.5 s, the shortest).
2. Uses the benchmark database (BENCH_DATABASE_URL, migrated; the web seed is not needed) and Redis DB
   (BENCH_REDIS_URL), an account of its own, and one real ``celery worker`` (prefork, ``--concurrency``
   processes, 1 by default: "one worker").
3. Latency: ``--latency`` compute resources, one after the other, each ``POST /v1/resources`` (through
   Django's test client in this process, bearer token and all) and then polled until ``active``; the
   median and the worst of the time from the POST to ``active`` (the region's default VPC exists first).
4. Throughput: ``--count`` compute resources created in one transaction through the service (queued
   on commit), resources per second from the commit until all are active; then all deleted, resources
   per second until all are ``deleted`` (instances terminated at the emulator).
5. Prints the figures and writes them to bench/out/aws.json.

The emulator answers in milliseconds where AWS takes tens of seconds to boot an instance: these figures
measure Elbia's side (API, queue, worker, boto3, the looks at pending work), not AWS's.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

AMI = "ami-760aaa0f"  # one of moto's own images, in every region
ACCOUNT = "bench-aws"


def start_moto() -> tuple[subprocess.Popen, str]:
    """``moto_server`` on 127.0.0.1 on a free port; returns once it answers."""
    port = common.free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
            return server, url
        except OSError:
            time.sleep(0.2)
    common.stop_process(server)
    raise SystemExit("moto_server did not start")


def configure_aws(endpoint: str) -> None:
    """The environment of this process and of the worker it starts: ELBIA_PROVIDER=aws at the emulator."""
    import boto3

    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
        ELBIA_PROVIDER="aws",
        ELBIA_AWS_ENDPOINT_URL=endpoint,
        ELBIA_AWS_AMI=AMI,
    )
    iam = boto3.client("iam", endpoint_url=endpoint)
    role = iam.create_role(RoleName="elbia-lambda", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    os.environ["ELBIA_AWS_LAMBDA_ROLE_ARN"] = role


def wait_for(resources, status: str, count: int, timeout: float = 600) -> float:
    """Seconds until ``count`` of ``resources`` are in ``status`` (polled every 20 ms); fails on a failure."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if resources.filter(status=status).count() >= count:
            return time.perf_counter() - started
        failed = resources.filter(status="failed").first()
        if failed is not None:
            raise SystemExit(f"{failed.public_id} failed: {failed.failure_reason}")
        time.sleep(0.02)
    raise SystemExit(f"not all {status} after {timeout:.0f} s")


def measure_latency(client, account, count: int) -> dict:
    from resources.models import Resource

    body = {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default", "tags": {"bench": "latency"}}
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.post("/v1/resources", json.dumps(body), content_type="application/json")
        assert response.status_code == 201, response.content
        created = Resource.objects.filter(public_id=response.json()["id"])
        while created.filter(status="active").count() == 0:
            if created.filter(status="failed").exists():
                raise SystemExit(f"failed: {created.get().failure_reason}")
            time.sleep(0.01)
        seconds.append(time.perf_counter() - started)
    result = {"resources": count, "median_s": statistics.median(seconds), "max_s": max(seconds)}
    common.log(f"POST to active: median {result['median_s']:.2f} s, worst {result['max_s']:.2f} s over {count}")
    return result


def measure_throughput(account, count: int) -> dict:
    from django.db import transaction

    from resources import services
    from resources.models import Resource

    vpc = Resource.objects.get(account=account, type="vpc", name="default", region="us-east-1")
    batch = Resource.objects.filter(account=account, tags__bench="throughput")
    with transaction.atomic():
        for _ in range(count):
            services.resource_create(
                account=account, region="us-east-1", instance_type="t3.micro", vpc=vpc, tags={"bench": "throughput"}
            )
    provisioning = wait_for(batch, "active", count)
    common.log(f"provisioning: {count} active in {provisioning:.1f} s = {count / provisioning:.1f} resources/s")
    with transaction.atomic():
        for resource in batch.filter(status="active"):
            services.resource_delete(resource=resource)
    deletion = wait_for(batch, "deleted", count)
    common.log(f"deletion: {count} deleted in {deletion:.1f} s = {count / deletion:.1f} resources/s")
    return {
        "resources": count,
        "provision_s": provisioning,
        "provision_per_s": count / provisioning,
        "delete_s": deletion,
        "delete_per_s": count / deletion,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=int, default=20, help="resources created one by one (default 20)")
    parser.add_argument("--count", type=int, default=200, help="resources created at once (default 200)")
    parser.add_argument("--concurrency", type=int, default=1, help="worker processes (default 1)")
    args = parser.parse_args()

    common.configure(settings="elbia.settings")
    moto, endpoint = start_moto()
    worker = None
    try:
        configure_aws(endpoint)
        common.ensure_database()
        common.setup_django()
        from django.test import Client

        from elbia.accounts.models import Account, User
        from elbia.accounts.services import token_issue
        from resources.models import Resource

        account, _ = Account.objects.get_or_create(name=ACCOUNT)
        Resource.objects.filter(account=account).delete()
        user = account.users.first() or User.objects.create_user(username=ACCOUNT, account=account)
        token = token_issue(user=user, scopes=["resources:read", "resources:write"], rate_limit="1000000/second")
        client = Client(headers={"authorization": f"Bearer {token.access_token}"})
        common.purge_queue()
        worker = common.start_celery_worker(concurrency=args.concurrency)
        load = common.load_average()
        common.log(f"AWS provider at moto, {args.concurrency} worker process(es), load average {load:.2f}")

        # The region's default VPC, created on first use, then measured apart from the instances.
        started = time.perf_counter()
        body = json.dumps({"type": "vpc", "region": "us-east-1", "name": "default"})
        assert client.post("/v1/resources", body, content_type="application/json").status_code == 201
        wait_for(Resource.objects.filter(account=account, type="vpc"), "active", 1)
        vpc = time.perf_counter() - started
        common.log(f"default VPC: POST to active {vpc:.2f} s")
        results = {
            "concurrency": args.concurrency,
            "load": load,
            "vpc_s": vpc,
            "latency": measure_latency(client, account, args.latency),
            "throughput": measure_throughput(account, args.count),
            "machine": common.machine(),
        }
    finally:
        if worker is not None:
            common.stop_process(worker)
        common.stop_process(moto)
    common.purge_queue()
    (common.OUT_DIR / "aws.json").write_text(json.dumps(results, indent=2, default=str))
    common.log(f"written to {common.OUT_DIR / 'aws.json'}")


if __name__ == "__main__":
    main()
