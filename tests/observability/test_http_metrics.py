"""/metrics: who may read it, and the request metrics it shows (route templates, bounded labels)."""

import pytest

from elbia.observability.http import route_template
from resources.models import Resource
from tests.observability.scrape import TOKEN, scrape, value
from tests.resources.factories import ComputeFactory

pytestmark = pytest.mark.django_db

COMPUTE = {"region": "us-east-1", "instance_type": "t2.micro", "vpc": "default"}


@pytest.fixture(autouse=True)
def _metrics_token(settings):
    settings.ELBIA_METRICS_TOKEN = TOKEN


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer "],
)
def test_metrics_is_an_unknown_path_without_the_token(client, authorization):
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", **extra)
    unknown = client.get("/metrics-nothing-here", **extra)
    assert response.status_code == 404
    assert (response.status_code, response["Content-Type"], response.content) == (
        unknown.status_code,
        unknown["Content-Type"],
        unknown.content,
    )


def test_metrics_is_off_without_a_configured_token(client, settings):
    settings.ELBIA_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_with_the_token(client):
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-cache" in response["Cache-Control"]
    assert "# TYPE elbia_http_requests_total counter" in response.content.decode()


def test_requests_are_counted_by_route_template_method_and_status(client, api, account):
    first, second = ComputeFactory(account=account), ComputeFactory(account=account)
    before = scrape(client)
    for resource in (first, second, first):
        assert api.get(f"/v1/resources/{resource.public_id}").status_code == 200
    assert api.get("/v1/resources/res_doesnotexist").status_code == 404
    assert api.get("/v1/nothing/here").status_code == 404
    after = scrape(client)

    detail = {"route": "/v1/resources/{id}", "method": "GET"}
    assert (
        value(after, "elbia_http_requests_total", **detail, status="200")
        - value(before, "elbia_http_requests_total", **detail, status="200")
        == 3
    )
    assert (
        value(after, "elbia_http_requests_total", **detail, status="404")
        - value(before, "elbia_http_requests_total", **detail, status="404")
        == 1
    )
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert (
        value(after, "elbia_http_requests_total", **unmatched) - value(before, "elbia_http_requests_total", **unmatched)
        == 1
    )
    # Latency: one observation per request, in the histogram of the route.
    assert (
        value(after, "elbia_http_request_duration_seconds_count", **detail)
        - value(before, "elbia_http_request_duration_seconds_count", **detail)
        == 4
    )
    assert value(after, "elbia_http_request_duration_seconds_sum", **detail) > value(
        before, "elbia_http_request_duration_seconds_sum", **detail
    )


def test_no_label_carries_an_id_or_a_raw_path(client, api, account):
    """Cardinality stays bounded: many objects and junk paths add no series beyond their route's."""
    resources = [ComputeFactory(account=account) for _ in range(5)]
    scrape(client)  # the /metrics series itself exists from here on
    for resource in resources:
        api.get(f"/v1/resources/{resource.public_id}")
    series_before = set(scrape(client))
    for resource in resources:
        api.get(f"/v1/resources/{resource.public_id}")
    for n in range(5):
        api.get(f"/v1/junk-{n}/res_{n}")
        client.get(f"/no-such-page-{n}")
        api.generic("BREW", "/v1/resources")
    after = scrape(client)
    new_series = set(after) - series_before
    ids = {resource.public_id for resource in resources} | {resource.vpc.public_id for resource in resources}
    labels = {label for _, labelset in after for label in labelset}
    assert not {value for _, value in labels if any(token in value for token in ids)}
    assert not {value for name, value in labels if name == "route" and ("junk" in value or "no-such" in value)}
    assert {value for name, value in labels if name == "method"} <= {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "other",
    }
    # Only the unmatched and "other" method series can be new, never one per id or path.
    assert {dict(labelset).get("route") for _, labelset in new_series} <= {"unmatched", "/v1/resources"}


def test_rate_limited_and_replayed_answers_are_counted(client, make_client, user):
    limited = make_client(user, rate_limit="2/minute")
    before = scrape(client)
    statuses = [limited.get("/v1/resources").status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]

    creator = make_client(user)
    first = creator.post("/v1/resources", COMPUTE, format="json", HTTP_IDEMPOTENCY_KEY="metrics-1")
    again = creator.post("/v1/resources", COMPUTE, format="json", HTTP_IDEMPOTENCY_KEY="metrics-1")
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert Resource.objects.filter(type="compute").count() == 1
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("elbia_http_rate_limited_total", route="/v1/resources") == 2
    assert delta("elbia_http_requests_total", route="/v1/resources", method="GET", status="429") == 2
    assert delta("elbia_http_idempotent_replays_total", route="/v1/resources") == 1
    assert delta("elbia_http_requests_total", route="/v1/resources", method="POST", status="201") == 2


@pytest.mark.parametrize(
    ("route", "template"),
    [
        ("v1/resources/(?P<id>[^/]+)$", "/v1/resources/{id}"),
        ("v1/resources$", "/v1/resources"),
        ("admin/accounts/user/<path:object_id>/change/", "/admin/accounts/user/{object_id}/change/"),
        ("verify-email/<str:token>/", "/verify-email/{token}/"),
        ("v1/.*$", "unmatched"),
        ("admin/(?P<url>.*)$", "unmatched"),
        ("", "/"),
    ],
)
def test_route_template(route, template):
    assert route_template(route) == template
