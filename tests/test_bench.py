"""The benchmark's floor (bench/floor.py) answers exactly what the product answers for the same data.

The floor is the benchmark's baseline for every web figure; if it drifted from the product (another
JSON, fewer rows), the product / floor ratios would mean nothing. One request per endpoint, no load.
"""

import json
import urllib.parse
from datetime import date, timedelta
from unittest import mock

import pytest
from django.utils import timezone

from bench import common, floor, raw
from billing.models import FunctionUsageDay, UsageEvent
from billing.rollups import metering_close
from resources.models import Resource
from tests.factories import FunctionFactory, PriceFactory, ResourceFactory, UsageEventFactory

pytestmark = [pytest.mark.bench, pytest.mark.urls("bench.floor_urls")]

FILTER = json.dumps(
    {
        "region": "us-east-1",
        "status": {"$in": ["active", "pending"]},
        "tags.env": "prod",
        "created_at": {"$gte": "2025-01-01T00:00:00Z"},
    }
)


@pytest.fixture
def inventory(account):
    now = timezone.now()
    vpc = ResourceFactory(account=account, type="vpc", name="default", instance_type="", cidr_block="172.31.0.0/16")
    other_vpc = ResourceFactory(account=account, type="vpc", name="other", region="eu-west-1", instance_type="")
    statuses = ["active", "pending", "failed", "deleted", "deleting", "active", "active"]
    for n in range(14):
        ResourceFactory(
            account=account,
            vpc=vpc if n % 3 else other_vpc,
            region="us-east-1" if n % 3 else "eu-west-1",
            instance_type=("t3.micro", "m5.large", "c5.large")[n % 3],
            status=statuses[n % len(statuses)],
            name="" if n % 4 == 0 else f"web-{n}",
            tags={"env": ("prod", "dev")[n % 2], "team": "web"},
            failure_reason="Simulated provisioning failure." if statuses[n % len(statuses)] == "failed" else "",
            created_at=now - timedelta(days=n, minutes=n),
            provisioned_at=now - timedelta(days=n) if statuses[n % len(statuses)] != "pending" else None,
            deleting_started_at=now - timedelta(hours=n) if statuses[n % len(statuses)] == "deleting" else None,
        )
    ResourceFactory(account=account, vpc=vpc, status="active", tags={"env": "prod"})  # same created_at: id breaks ties
    functions = [FunctionFactory(account=account, memory_mb=memory) for memory in (128, 1024)]
    for n in range(5):
        UsageEventFactory(function=functions[n % 2], duration_ms=100 + n * 37, timestamp=now - timedelta(seconds=n))
    ResourceFactory(account=ResourceFactory().account)  # another account's resource: never listed
    return {"vpc": vpc, "functions": functions}


def both(api, method: str, path: str, **kwargs):
    """The product's and the floor's answers to the same request."""
    call = getattr(api, method)
    return call(f"/v1/{path}", **kwargs), call(f"/bench-floor/{path}", **kwargs)


def same_links(product, floor_answer, prefix: str = "/bench-floor/") -> bool:
    """The floor's Link header is the product's, but for the path prefix."""
    return floor_answer["Link"].replace(prefix, "/v1/") == product["Link"]


def next_cursor(response) -> str:
    target = next(part for part in response["Link"].split(", ") if part.endswith('rel="next"'))
    return urllib.parse.parse_qs(urllib.parse.urlsplit(target.split(";")[0].strip("<>")).query)["cursor"][0]


@pytest.mark.parametrize(
    "query",
    ["limit=50", "limit=5", "limit=5&offset=3", "limit=4&offset=12", f"limit=50&filter={urllib.parse.quote(FILTER)}",
     f"limit=3&filter={urllib.parse.quote(FILTER)}"],
)  # fmt: skip
def test_the_floor_lists_the_same_resources_as_the_product(api, inventory, query):
    product, floor_answer = both(api, "get", f"resources?{query}")

    assert product.status_code == floor_answer.status_code == 200
    assert floor_answer.json() == product.json()
    assert same_links(product, floor_answer)
    assert product.json(), "the data set must give a non-empty page"


def test_the_floor_follows_the_same_cursor(api, inventory):
    first = api.get("/v1/resources?limit=4")
    product, floor_answer = both(api, "get", f"resources?limit=4&cursor={next_cursor(first)}")

    assert product.status_code == floor_answer.status_code == 200
    assert floor_answer.json() == product.json() != first.json()
    assert same_links(product, floor_answer)


@pytest.mark.parametrize("query", ["limit=50&tag=api", "limit=2&tag=api", "limit=2&offset=2&tag=api", "tag=none"])
def test_the_floor_lists_the_same_functions_as_the_product(api, account, inventory, query):
    for n, status in enumerate(["active", "deprecated", "failed", "deleted", "active", "active"]):
        FunctionFactory(
            account=account,
            status=status,
            tags=["api", "web"] if n % 2 == 0 else ["api"],
            environment={"B": "1", "A": "2"},
        )
    FunctionFactory(tags=["api"])  # another account's: never listed

    product, floor_answer = both(api, "get", f"functions?{query}")

    assert product.status_code == floor_answer.status_code == 200
    assert floor_answer.json() == product.json()
    assert same_links(product, floor_answer)
    tag = urllib.parse.parse_qs(query)["tag"][0]
    counted = api.get(f"/v1/functions?tag={tag}", HTTP_PREFER="count=exact")["X-Total-Count"]
    assert counted == ("0" if tag == "none" else "5")


def test_the_floor_retrieves_and_expands_the_same_resource(api, inventory):
    resource = Resource.objects.filter(vpc=inventory["vpc"]).first()

    product, floor_answer = both(api, "get", f"resources/{resource.public_id}?expand=vpc")

    assert product.status_code == floor_answer.status_code == 200
    assert floor_answer.json() == product.json()
    assert floor_answer.json()["vpc"]["id"] == inventory["vpc"].public_id


@pytest.mark.parametrize("closed", [False, True])
def test_the_floor_reads_the_same_usage(api, inventory, closed):
    frozen = timezone.now()
    if closed:  # open spans metered by a daily close, and fresh ones
        metering_close(now=frozen)
        ResourceFactory(account=inventory["vpc"].account, vpc=inventory["vpc"], provisioned_at=frozen)
    month = f"{frozen:%Y-%m}"
    with mock.patch("django.utils.timezone.now", return_value=frozen):
        product, floor_answer = both(api, "get", f"usage?month={month}")

    assert product.status_code == floor_answer.status_code == 200
    assert floor_answer.json() == product.json()
    assert {line["kind"] for line in product.json()["breakdown"]} == {"request", "gb_second", "instance_hour"}


def test_the_floor_creates_the_same_resource(api, inventory):
    body = {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default", "tags": {"bench": "create"}}

    product, floor_answer = both(api, "post", "resources", data=body, format="json")

    assert product.status_code == floor_answer.status_code == 201
    moments = ("id", "created_at", "updated_at", "provisioning_started_at")
    assert {k: v for k, v in floor_answer.json().items() if k not in moments} == {
        k: v for k, v in product.json().items() if k not in moments
    }
    created = Resource.objects.filter(tags__bench="create").values_list("status", "vpc_id", "public_id")
    assert sorted(created) == sorted(
        [
            ("pending", inventory["vpc"].pk, product.json()["id"]),
            ("pending", inventory["vpc"].pk, floor_answer.json()["id"]),
        ]
    )


def test_the_floor_records_the_same_usage_events(api, inventory):
    function = inventory["functions"][1]
    moment = (timezone.now() - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def batch(prefix: str) -> dict:
        events = [{"event_id": f"{prefix}-{n}", "function": function.public_id, "timestamp": moment,
                   "duration_ms": 10 + n} for n in range(3)]  # fmt: skip
        return {"events": [*events, events[0]]}  # a repeat inside the batch counts once

    product = api.post("/v1/usage/events", batch("p"), format="json")
    floor_answer = api.post("/bench-floor/usage/events", batch("f"), format="json")
    floor_again = api.post("/bench-floor/usage/events", batch("f"), format="json")

    assert product.status_code == floor_answer.status_code == 200
    assert floor_answer.json() == product.json() == {"accepted": 3, "duplicates": 1}
    assert floor_again.json() == {"accepted": 0, "duplicates": 4}
    stored = UsageEvent.objects.filter(function=function, event_id__regex=r"^[pf]-").order_by("event_id")
    rows = {(e.event_id[2:], e.timestamp, e.duration_ms, e.memory_mb) for e in stored if e.event_id[0] == "p"}
    assert rows == {(e.event_id[2:], e.timestamp, e.duration_ms, e.memory_mb) for e in stored if e.event_id[0] == "f"}
    function.refresh_from_db()
    function.resource.refresh_from_db()
    assert function.last_executed == function.resource.last_execution is not None
    assert sum(FunctionUsageDay.objects.filter(function=function).values_list("executions", flat=True)) == (
        UsageEvent.objects.filter(function=function).count()
    )  # both keep the daily rollups


def test_the_floor_refuses_a_token_without_the_scope(make_client, user, inventory):
    reader = make_client(user, scopes=["billing:read"])

    assert reader.get("/bench-floor/resources?limit=5").status_code == 403
    assert reader.get("/bench-floor/usage").status_code == 200


def test_the_bench_modules_import_without_a_server():
    assert common.DATABASE_URL.endswith("/elbia_bench") or "BENCH_DATABASE_URL" in __import__("os").environ
    assert floor.COLUMNS[0] == "id" and len(floor.COLUMNS) == len(common.RESOURCE_COLUMNS) + 1


@pytest.fixture
def raw_floor(settings):
    """The raw floor (no Django) on its own connection to the test database (it sees committed rows only)."""
    database = settings.DATABASES["default"]
    url = f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    with mock.patch.dict("os.environ", {"BENCH_RAW_DATABASE_URL": url}):
        yield raw
    raw.close()


def raw_get(path: str, token: str):
    """Call the raw floor's WSGI application: (status, headers, parsed body)."""
    answer = {}
    target, _, query = path.partition("?")
    environ = {"PATH_INFO": f"/bench-raw/{target}", "QUERY_STRING": query, "HTTP_AUTHORIZATION": f"Bearer {token}",
               "HTTP_HOST": "testserver"}  # fmt: skip
    body = b"".join(raw.application(environ, lambda status, headers: answer.update(status=status, headers=headers)))
    return int(answer["status"].split()[0]), dict(answer["headers"]), json.loads(body)


@pytest.mark.django_db(transaction=True)
def test_the_raw_floor_answers_what_the_product_answers(raw_floor, make_client):
    from tests.factories import UserFactory

    user = UserFactory()
    api = make_client(user)
    vpc = ResourceFactory(account=user.account, type="vpc", name="default", instance_type="")
    for n in range(7):
        ResourceFactory(account=user.account, vpc=vpc, tags={"n": n}, created_at=timezone.now() - timedelta(hours=n))
    function = FunctionFactory(account=user.account, memory_mb=1024)
    UsageEventFactory(function=function, duration_ms=1234)
    for kind in ("request", "gb_second"):  # a transactional test may follow one that flushed the seeded prices
        PriceFactory(kind=kind, unit_price="0.5", effective_from=date(2001, 1, 1))
    token = api.issued.access_token
    month = f"{timezone.now():%Y-%m}"
    first = api.get("/v1/resources?limit=3")
    resource = first.json()[1]["id"]
    for path in ("resources?limit=3", f"resources?limit=3&cursor={next_cursor(first)}",
                 f"resources/{resource}?expand=vpc", f"resources/{resource}"):  # fmt: skip
        status, headers, body = raw_get(path, token)
        product = api.get(f"/v1/{path}")
        assert status == product.status_code == 200, path
        assert body == product.json(), path
        assert headers.get("Link", "").replace("/bench-raw/", "/v1/") == product.get("Link", ""), path
    frozen = timezone.now()
    with mock.patch("bench.raw.datetime") as clock, mock.patch("django.utils.timezone.now", return_value=frozen):
        clock.now.return_value = frozen
        status, _, body = raw_get(f"usage?month={month}", token)
        assert status == 200 and body == api.get(f"/v1/usage?month={month}").json()
    assert raw_get("resources?limit=3", "elb_at_unknown")[0] == 401
