"""The dashboard's resource pages: the list, a resource's page and its live block, create, edit, delete, retry.

View-level (Django's test client): what each page shows, that every write goes through the services with
their messages next to the fields, is audited and written once per form, a fixed number of queries
whatever the data, and another account's ID is the dashboard's 404 page.
"""

import re
import uuid

import pytest
from django.template.defaultfilters import date as date_filter
from django.test import Client, override_settings
from django.utils import timezone

from elbia.audit.models import AuditEvent
from resources.api.serializers import ResourceSerializer
from resources.models import Resource
from tests.factories import ResourceFactory
from tests.functions.factories import FunctionFactory
from tests.pages import rows
from tests.resources.factories import ComputeFactory, VpcFactory

pytestmark = pytest.mark.django_db


def post(client, path: str, data: dict | None = None, form_id=None):
    return client.post(path, {"form_id": str(form_id or uuid.uuid4()), **(data or {})})


def field_errors(response, field: str) -> list[str]:
    """The messages shown under a form field (``_field.html``)."""
    page = response.content.decode()
    match = re.search(rf'id="id_{field}".*?(?=<div class="field|<fieldset|<div class="form-actions)', page, re.S)
    assert match, f"no field {field}"
    return re.findall(r'<p class="field-error">(.*?)</p>', match.group(0))


def unescape(text: str) -> str:
    return text.replace("&#x27;", "'").replace("&quot;", '"').replace("&amp;", "&")


# --- The list -------------------------------------------------------------------------------------------


def test_resources_page_shows_only_the_accounts_resources(signed_in, account, other_user):
    mine = ResourceFactory(account=account, name="my-server", instance_type="t2.small")
    theirs = ResourceFactory(account=other_user.account, name="their-server")
    page = signed_in.get("/resources/").content.decode()
    assert mine.public_id in page and "my-server" in page and "t2.small · 2048MB" in page
    assert theirs.public_id not in page and "their-server" not in page


def test_names_link_to_their_pages_from_the_list_and_the_overview(signed_in, account):
    compute = ComputeFactory(account=account, name="web-1")
    function = FunctionFactory(account=account, name="thumbnailer")
    listed = signed_in.get("/resources/").content.decode()
    assert f'href="/resources/{compute.public_id}/">web-1</a>' in listed
    assert f'href="/resources/{compute.vpc.public_id}/">{compute.vpc.name}</a>' in listed  # the VPC column
    assert f'href="/resources/{function.resource.public_id}/">thumbnailer</a>' in listed
    overview = signed_in.get("/").content.decode()
    assert f'href="/resources/{compute.public_id}/">web-1</a>' in overview
    assert f'href="/functions/{function.public_id}/">thumbnailer</a>' in overview


def test_resources_page_filters(signed_in, account):
    ResourceFactory(account=account, region="eu-west-1", status="active", name="eu-active")
    ResourceFactory(account=account, region="us-east-1", status="failed", name="us-failed")
    ResourceFactory(account=account, region="eu-west-1", type="vpc", instance_type="", name="eu-vpc")
    ResourceFactory(account=account, status="deleted", name="gone")

    everything = signed_in.get("/resources/")
    assert rows(everything) == 3 and "gone" not in everything.content.decode()
    by_region = signed_in.get("/resources/?region=eu-west-1").content.decode()
    assert "eu-active" in by_region and "eu-vpc" in by_region and "us-failed" not in by_region
    by_type = signed_in.get("/resources/?type=vpc&region=eu-west-1")
    assert rows(by_type) == 1 and "eu-vpc" in by_type.content.decode()
    deleted = signed_in.get("/resources/?status=deleted")
    assert rows(deleted) == 1 and "gone" in deleted.content.decode()
    none = signed_in.get("/resources/?status=pending").content.decode()
    assert "No resources match these filters" in none


@pytest.mark.parametrize("query", ["status=exploded", "region=mars-1", "type=spaceship", "region=%00"])
def test_resources_page_refuses_unknown_filter_values(signed_in, account, query):
    ResourceFactory(account=account)
    response = signed_in.get(f"/resources/?{query}")
    assert response.status_code == 400
    assert "must be one of: " in response.content.decode()
    assert rows(response) <= 0


@pytest.mark.parametrize("count", [1, 60])
def test_resources_page_query_count_does_not_grow(signed_in, account, django_assert_num_queries, count):
    vpc = ResourceFactory(account=account, type="vpc", instance_type="", name="main-vpc")
    ResourceFactory.create_batch(count, account=account, vpc=vpc)
    # session, user, account, count, one page of resources with their VPC and function joined
    with django_assert_num_queries(5):
        response = signed_in.get("/resources/")
    assert rows(response) == min(count + 1, 50)
    assert "main-vpc" in response.content.decode()


def test_the_list_refreshes_its_rows_while_one_is_changing(signed_in, account):
    resource = ComputeFactory(account=account)
    assert 'id="list-rows">' in signed_in.get("/resources/?region=us-east-1").content.decode()
    Resource.objects.filter(pk=resource.pk).update(status="provisioning")
    live = signed_in.get("/resources/?region=us-east-1").content.decode()
    assert (
        '<div id="list-rows" hx-get="/resources/?region=us-east-1" hx-select="#list-rows" hx-swap="outerHTML" '
        'hx-trigger="every 2s">'
    ) in live


def test_resources_page_pages_by_fifty_keeping_filters(signed_in, account):
    ResourceFactory.create_batch(51, account=account, region="eu-west-1")
    first = signed_in.get("/resources/?region=eu-west-1")
    assert rows(first) == 50
    assert 'href="?region=eu-west-1&amp;page=2"' in first.content.decode()
    assert rows(signed_in.get("/resources/?region=eu-west-1&page=2")) == 1
    assert rows(signed_in.get("/resources/?region=eu-west-1&page=999")) == 1  # the last page


# --- A resource's page ---------------------------------------------------------------------------------


def test_a_compute_instance_page_shows_every_field_the_api_shows(signed_in, account):
    vpc = VpcFactory(account=account, name="main", region="eu-west-1", cidr_block="10.1.0.0/16")
    compute = ComputeFactory(
        account=account, vpc=vpc, region="eu-west-1", name="web-1", instance_type="m5.large", tags={"env": "prod"}
    )
    page = signed_in.get(f"/resources/{compute.public_id}/").content.decode()
    shown = ResourceSerializer.represent(compute)
    for field in ("id", "type", "name", "region", "status", "instance_type", "memory", "vpc"):
        assert str(shown[field]) in unescape(page), field
    assert "Active" in page and "env=prod" in page
    assert "m5.large · 2 vCPUs · 8 GB" in page  # the catalog's figures
    for moment in (compute.created_at, compute.updated_at, compute.provisioning_started_at, compute.provisioned_at):
        assert f'datetime="{date_filter(moment, "c")}"' in page
    assert f'href="/resources/{vpc.public_id}/">main</a>' in page
    assert "10.1.0.0/16" in page


def test_a_vpc_page_lists_its_live_resources(signed_in, account):
    vpc = VpcFactory(account=account, name="main")
    web = ComputeFactory(account=account, vpc=vpc, name="web-1")
    ComputeFactory(account=account, vpc=vpc, name="old-1", status="deleted")
    elsewhere = ComputeFactory(account=account, name="elsewhere")
    page = signed_in.get(f"/resources/{vpc.public_id}/").content.decode()
    assert "Resources in this VPC" in page
    assert f'href="/resources/{web.public_id}/">web-1</a>' in page
    assert "old-1" not in page and elsewhere.name not in page


def test_a_function_resource_page_links_its_function(signed_in, account):
    function = FunctionFactory(account=account, name="thumbnailer")
    page = signed_in.get(f"/resources/{function.resource.public_id}/").content.decode()
    assert f'href="/functions/{function.public_id}/">thumbnailer</a>' in page
    assert "Retry provisioning" not in page


def test_the_timeline_shows_the_lifecycle_and_who_did_what(signed_in, account, user):
    compute = ComputeFactory(account=account, name="web-1", status="pending", provisioned_at=None)
    post(signed_in, f"/resources/{compute.public_id}/edit/", {"name": "web-2", "tags": ""})
    Resource.objects.filter(pk=compute.pk).update(
        status="failed", failure_reason="No capacity in us-east-1a.", failed_at=timezone.now()
    )
    page = signed_in.get(f"/resources/{compute.public_id}/").content.decode()
    timeline = page[page.index('class="timeline"') :]
    assert "Created" in timeline
    assert f'Changed name</span> <span class="muted">by {user.username}' in timeline
    assert "Failed" in timeline and "No capacity in us-east-1a." in timeline


def test_a_resource_in_a_transient_status_updates_itself(signed_in, account, django_assert_num_queries):
    pending = ComputeFactory(account=account, status="pending", provisioned_at=None)
    page = signed_in.get(f"/resources/{pending.public_id}/").content.decode()
    assert f'hx-get="/resources/{pending.public_id}/lifecycle/"' in page and 'hx-trigger="every 2s"' in page
    assert "Updating live" in page

    Resource.objects.filter(pk=pending.pk).update(status="active")
    # session, user, account, the resource, its audit events
    with django_assert_num_queries(5):
        fragment = signed_in.get(f"/resources/{pending.public_id}/lifecycle/", HTTP_HX_REQUEST="true")
    body = fragment.content.decode()
    assert body.lstrip().startswith('<section class="card lifecycle" id="lifecycle"')
    assert "<html" not in body and "hx-get" not in body  # final: the block stops asking
    assert 'data-status="active"' in body


def test_a_signed_out_live_update_reloads_the_page(client, account):
    pending = ComputeFactory(account=account, status="pending")
    response = client.get(f"/resources/{pending.public_id}/lifecycle/", HTTP_HX_REQUEST="true")
    assert response.status_code == 204 and response["HX-Refresh"] == "true"
    assert client.get(f"/resources/{pending.public_id}/lifecycle/").status_code == 302  # a plain request: sign in


@pytest.mark.parametrize("size", [1, 40])
def test_resource_pages_query_counts_do_not_grow(signed_in, account, django_assert_num_queries, size):
    vpc = VpcFactory(account=account, name="main")
    compute = ComputeFactory(account=account, vpc=vpc, tags={f"k{n}": "v" for n in range(size)})
    ComputeFactory.create_batch(size, account=account, vpc=vpc)
    function = FunctionFactory(account=account)
    for _ in range(size):
        post(signed_in, f"/resources/{compute.public_id}/edit/", {"name": f"web-{_}", "tags": ""})
    # session, user, account, the resource with its VPC and function, its audit events, the VPC's live resources
    for page in (compute, vpc):
        with django_assert_num_queries(6):
            assert signed_in.get(f"/resources/{page.public_id}/").status_code == 200
    with django_assert_num_queries(5):  # a function's compute has no VPC
        assert signed_in.get(f"/resources/{function.resource.public_id}/").status_code == 200
    with django_assert_num_queries(4):  # session, user, account, the VPCs to choose from
        assert signed_in.get("/resources/new/").status_code == 200
    with django_assert_num_queries(3):
        assert signed_in.get("/resources/new-vpc/").status_code == 200
    with django_assert_num_queries(4):  # ... and the resource
        assert signed_in.get(f"/resources/{compute.public_id}/edit/").status_code == 200
    with django_assert_num_queries(4):  # ... the resource
        assert signed_in.get(f"/resources/{compute.public_id}/delete/").status_code == 200
    # ... the VPC, whether anything lives in it, and what does
    with django_assert_num_queries(6):
        assert signed_in.get(f"/resources/{vpc.public_id}/delete/").status_code == 200


# --- Creating -------------------------------------------------------------------------------------------


def test_create_a_compute_instance(signed_in, account, user):
    form = signed_in.get("/resources/new/").content.decode()
    assert "t3.micro · 2 vCPUs · 1 GB" in form and "c5.24xlarge · 96 vCPUs · 192 GB" in form
    assert 'value="default"' in form

    response = post(
        signed_in,
        "/resources/new/",
        {"name": "web-1", "region": "eu-west-1", "instance_type": "t3.micro", "vpc": "default", "tags": "env=prod"},
    )
    resource = Resource.objects.get(account=account, type="compute")
    assert response.status_code == 302 and response["Location"] == f"/resources/{resource.public_id}/"
    assert (resource.name, resource.region, resource.instance_type, resource.status) == (
        "web-1",
        "eu-west-1",
        "t3.micro",
        "pending",
    )
    assert resource.tags == {"env": "prod"} and resource.vpc.name == "default"
    event = AuditEvent.objects.get(action="resource.create")
    assert (event.object_id, event.actor_user, event.actor_type) == (resource.public_id, user, "user")
    assert event.changed_fields == ["instance_type", "name", "region", "tags", "vpc"]


def test_a_vpc_of_the_account_can_be_chosen(signed_in, account):
    vpc = VpcFactory(account=account, name="backend", region="eu-west-1")
    broken = VpcFactory(account=account, name="broken", status="failed")
    form = signed_in.get("/resources/new/").content.decode()
    assert f'value="{vpc.public_id}"' in form and broken.public_id not in form  # only VPCs that can take it
    post(signed_in, "/resources/new/", {"region": "eu-west-1", "instance_type": "t2.nano", "vpc": vpc.public_id})
    assert Resource.objects.get(account=account, type="compute").vpc == vpc


def test_submitting_a_create_form_twice_creates_once(signed_in, account):
    form_id = uuid.uuid4()
    data = {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default"}
    first = post(signed_in, "/resources/new/", data, form_id=form_id)
    second = post(signed_in, "/resources/new/", data, form_id=form_id)
    assert Resource.objects.filter(account=account, type="compute").count() == 1
    assert second.status_code == 302 and second["Location"] == first["Location"]
    assert "already submitted" in signed_in.get(second["Location"]).content.decode()
    assert AuditEvent.objects.filter(action="resource.create").count() == 1


def test_a_create_form_is_written_once_while_redis_is_unreachable(signed_in, account):
    from tests.accounts.test_login import DEAD_REDIS

    with override_settings(CACHES=DEAD_REDIS):
        form_id = uuid.uuid4()
        data = {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default"}
        first = post(signed_in, "/resources/new/", data, form_id=form_id)
        assert post(signed_in, "/resources/new/", data, form_id=form_id)["Location"] == first["Location"]
    assert Resource.objects.filter(account=account, type="compute").count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"region": "mars-1"}, "region", "'mars-1' is not a valid region."),
        ({"instance_type": "t9.huge"}, "instance_type", "'t9.huge' is not a valid instance type."),
        ({"vpc": "nowhere"}, "vpc", "No VPC 'nowhere' in us-east-1 for this account."),
        ({"tags": "1bad=x"}, "tags", "Tag key '1bad' is invalid"),
        ({"tags": "no equals sign"}, "tags", "Line 1: write each tag as key=value on a line of its own."),
    ],
)
def test_create_shows_the_services_messages_next_to_the_fields(signed_in, account, data, field, message):
    response = post(
        signed_in, "/resources/new/", {"region": "us-east-1", "instance_type": "t3.micro", "vpc": "default", **data}
    )
    assert response.status_code == 400
    assert any(message in unescape(error) for error in field_errors(response, field))
    assert not Resource.objects.filter(account=account, type="compute").exists()


def test_a_vpc_in_another_region_is_refused_next_to_the_vpc(signed_in, account):
    vpc = VpcFactory(account=account, name="eu", region="eu-west-1")
    response = post(
        signed_in, "/resources/new/", {"region": "us-east-1", "instance_type": "t3.micro", "vpc": vpc.public_id}
    )
    assert response.status_code == 400
    assert field_errors(response, "vpc") == [
        f"VPC {vpc.public_id} is in eu-west-1; a resource must be in its VPC&#x27;s region (us-east-1)."
    ]


def test_create_a_vpc_and_a_duplicate_name_is_refused(signed_in, account):
    response = post(signed_in, "/resources/new-vpc/", {"name": "backend", "region": "eu-west-1", "cidr_block": ""})
    vpc = Resource.objects.get(account=account, type="vpc")
    assert response["Location"] == f"/resources/{vpc.public_id}/"
    assert (vpc.name, vpc.cidr_block, vpc.status) == ("backend", "10.0.0.0/16", "pending")

    again = post(signed_in, "/resources/new-vpc/", {"name": "backend", "region": "eu-west-1"})
    assert again.status_code == 400
    assert "A VPC named &#x27;backend&#x27; already exists in eu-west-1." in again.content.decode()
    bad_name = post(signed_in, "/resources/new-vpc/", {"name": "-bad-", "region": "eu-west-1"})
    assert "VPC names are 1-64 letters" in field_errors(bad_name, "name")[0]
    bad_range = post(
        signed_in, "/resources/new-vpc/", {"name": "ok", "region": "eu-west-1", "cidr_block": "10.0.0.0/8"}
    )
    assert field_errors(bad_range, "cidr_block") == ["A VPC&#x27;s CIDR block must be an IPv4 network from /16 to /28."]
    assert Resource.objects.filter(account=account, type="vpc").count() == 1


# --- Changing, deleting, retrying ------------------------------------------------------------------------


def test_rename_and_tag_a_resource(signed_in, account, compute):
    form = signed_in.get(f"/resources/{compute.public_id}/edit/").content.decode()
    assert f'value="{compute.name}"' in form and "env=prod</textarea>" in form
    response = post(
        signed_in, f"/resources/{compute.public_id}/edit/", {"name": "web-renamed", "tags": "env=dev\nteam=web"}
    )
    assert response["Location"] == f"/resources/{compute.public_id}/"
    compute.refresh_from_db()
    assert compute.name == "web-renamed" and compute.tags == {"env": "dev", "team": "web"}
    assert AuditEvent.objects.get(action="resource.update").changed_fields == ["name", "tags"]

    unchanged = post(
        signed_in, f"/resources/{compute.public_id}/edit/", {"name": "web-renamed", "tags": "env=dev\nteam=web"}
    )
    assert unchanged.status_code == 302 and AuditEvent.objects.filter(action="resource.update").count() == 1


def test_renaming_a_vpc_keeps_the_vpc_name_rules(signed_in, account, vpc):
    VpcFactory(account=account, name="taken", region=vpc.region)
    taken = post(signed_in, f"/resources/{vpc.public_id}/edit/", {"name": "taken", "tags": ""})
    assert taken.status_code == 400 and "already exists" in taken.content.decode()
    bad = post(signed_in, f"/resources/{vpc.public_id}/edit/", {"name": "no spaces", "tags": ""})
    assert "VPC names are 1-64 letters" in field_errors(bad, "name")[0]
    vpc.refresh_from_db()
    assert vpc.name == "main"


def test_delete_a_compute_instance_after_confirmation(signed_in, account, compute):
    confirm = signed_in.get(f"/resources/{compute.public_id}/delete/").content.decode()
    assert "is torn down" in confirm and f">{compute.vpc.name}</a>, stays" in confirm
    unconfirmed = post(signed_in, f"/resources/{compute.public_id}/delete/")
    assert unconfirmed.status_code == 400 and "Confirm to go on." in unconfirmed.content.decode()
    compute.refresh_from_db()
    assert compute.status == "active"

    response = post(signed_in, f"/resources/{compute.public_id}/delete/", {"confirmed": "yes"})
    assert response["Location"] == f"/resources/{compute.public_id}/"
    compute.refresh_from_db()
    assert compute.status == "deleting"
    assert AuditEvent.objects.get(action="resource.delete").object_id == compute.public_id
    page = signed_in.get(response["Location"]).content.decode()
    assert "hx-get" in page and "Delete</a>" not in page


def test_a_vpc_in_use_cannot_be_deleted_and_the_page_says_why(signed_in, account, vpc, compute):
    confirm = signed_in.get(f"/resources/{vpc.public_id}/delete/").content.decode()
    assert f"VPC {vpc.public_id} is still used by 1 live resource(s)." in confirm
    assert f'href="/resources/{compute.public_id}/">{compute.name}</a>' in confirm
    assert 'name="confirmed"' not in confirm

    forced = post(signed_in, f"/resources/{vpc.public_id}/delete/", {"confirmed": "yes"})
    assert forced.status_code == 400
    assert f"VPC {vpc.public_id} is still used by 1 live resource(s)." in forced.content.decode()
    vpc.refresh_from_db()
    assert vpc.status == "active" and not AuditEvent.objects.filter(action="resource.delete").exists()


def test_a_function_resource_is_deleted_through_its_function(signed_in, account):
    function = FunctionFactory(account=account, name="thumbnailer")
    confirm = signed_in.get(f"/resources/{function.resource.public_id}/delete/").content.decode()
    assert "runs a function; delete the function instead." in confirm
    assert f'href="/functions/{function.public_id}/">thumbnailer</a>' in confirm


def test_retry_a_failed_resource(signed_in, account, vpc):
    failed = ComputeFactory(account=account, vpc=vpc, status="failed", failure_reason="No capacity.")
    page = signed_in.get(f"/resources/{failed.public_id}/").content.decode()
    assert "Retry provisioning" in page
    response = post(signed_in, f"/resources/{failed.public_id}/retry/")
    assert response["Location"] == f"/resources/{failed.public_id}/"
    failed.refresh_from_db()
    assert failed.status == "pending" and failed.failure_reason == ""
    assert AuditEvent.objects.get(action="resource.retry_provisioning").changed_fields == ["status"]

    again = post(signed_in, f"/resources/{failed.public_id}/retry/")  # a new form, but it is pending now
    assert again.status_code == 302
    refused = signed_in.get(again["Location"]).content.decode()
    assert f"Only failed resources can be retried; {failed.public_id} is pending." in refused


# --- Safety: other accounts, CSRF, methods ----------------------------------------------------------------

OBJECT_ROUTES = [
    ("get", "/resources/{id}/"),
    ("get", "/resources/{id}/lifecycle/"),
    ("get", "/resources/{id}/edit/"),
    ("post", "/resources/{id}/edit/"),
    ("get", "/resources/{id}/delete/"),
    ("post", "/resources/{id}/delete/"),
    ("post", "/resources/{id}/retry/"),
]


def test_every_object_route_is_checked():
    from resources.urls import urlpatterns

    routes = {f"/resources/{pattern.pattern}".replace("<str:public_id>", "{id}") for pattern in urlpatterns}
    assert {route for route in routes if "{id}" in route} == {route for _, route in OBJECT_ROUTES}


@pytest.mark.parametrize(("method", "route"), OBJECT_ROUTES)
def test_another_accounts_resource_is_a_404_page(signed_in, account, others_compute, method, route):
    path = route.format(id=others_compute.public_id)
    data = {"form_id": str(uuid.uuid4()), "confirmed": "yes", "name": "mine-now", "tags": ""}
    response = getattr(signed_in, method)(path, data if method == "post" else None)
    assert response.status_code == 404
    assert "Page not found" in response.content.decode() and 'class="topbar"' in response.content.decode()
    others_compute.refresh_from_db()
    assert others_compute.status == "active" and others_compute.name != "mine-now"
    assert not AuditEvent.objects.exists()


def test_a_malformed_id_is_a_404_without_looking(signed_in, django_assert_num_queries):
    with django_assert_num_queries(3):  # session, user, account
        assert signed_in.get("/resources/not-an-id/").status_code == 404


def test_every_form_carries_a_csrf_token_and_a_post_without_one_is_refused(user, account, compute):
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    ComputeFactory(account=account, vpc=compute.vpc, status="failed")
    failed = Resource.objects.get(status="failed")
    for path in (
        "/resources/new/",
        "/resources/new-vpc/",
        f"/resources/{compute.public_id}/edit/",
        f"/resources/{compute.public_id}/delete/",
        f"/resources/{failed.public_id}/",
    ):
        page = client.get(path).content.decode()
        forms = re.findall(r'<form method="post".*?</form>', page, re.S)
        assert forms, path
        assert all("csrfmiddlewaretoken" in form for form in forms), path
    refused = client.post(f"/resources/{compute.public_id}/delete/", {"form_id": str(uuid.uuid4()), "confirmed": "yes"})
    assert refused.status_code == 403
    compute.refresh_from_db()
    assert compute.status == "active"


def test_pages_refuse_other_methods(signed_in, compute):
    assert signed_in.post(f"/resources/{compute.public_id}/").status_code == 405
    assert signed_in.get(f"/resources/{compute.public_id}/retry/").status_code == 405
