"""/v1/resources: list, filter, create, retrieve, update and delete, with every error the contract names."""

import json
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from elbia.audit.models import AuditEvent
from elbia.models import OutboxMessage
from functions.models import Function
from resources.models import Resource, ResourceStatus, ResourceType
from tests.resources.conftest import error_of
from tests.resources.factories import ComputeFactory, VpcFactory

pytestmark = pytest.mark.django_db

LIST = "/v1/resources"
OBJECT_FIELDS = {
    "id",
    "type",
    "name",
    "region",
    "status",
    "instance_type",
    "vpc",
    "memory",
    "tags",
    "created_at",
    "updated_at",
    "provisioning_started_at",
    "provisioned_at",
    "last_execution",
    "failure_reason",
    "provider_id",
}


def detail(resource) -> str:
    return f"{LIST}/{resource.public_id if isinstance(resource, Resource) else resource}"


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()]


def invalid_parameter(response, name: str) -> str:
    message = error_of(response, 400, "invalid_parameter")["message"]
    assert f"'{name}'" in message
    return message


def invalid_request(response) -> dict:
    return error_of(response, 400, "invalid_request", "Invalid JSON in request body").get("details", {})


def post(api, body, **extra):
    return api.post(LIST, body, format="json", **extra)


COMPUTE = {"region": "us-east-1", "instance_type": "t2.micro", "vpc": "default"}


class TestAuthentication:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("get", LIST),
            ("post", LIST),
            ("get", "/v1/resources/RES_0000000001"),
            ("patch", "/v1/resources/RES_0000000001"),
            ("delete", "/v1/resources/RES_0000000001"),
        ],
    )
    def test_no_token_is_401(self, anonymous_api, method, path):
        response = getattr(anonymous_api, method)(path)
        error_of(response, 401, "unauthorized", "Invalid or missing API token")
        assert response["WWW-Authenticate"].startswith("Bearer ")

    def test_reading_needs_the_read_scope(self, make_client, user, compute):
        writer = make_client(user, scopes=["resources:write"])
        for response in (writer.get(LIST), writer.get(detail(compute))):
            error = error_of(response, 403, "insufficient_scope")
            assert "resources:read" in error["message"]

    def test_writing_needs_the_write_scope(self, make_client, user, compute):
        reader = make_client(user, scopes=["resources:read", "functions:write"])
        for response in (
            reader.post(LIST, COMPUTE, format="json"),
            reader.patch(detail(compute), {"name": "x"}, format="json"),
            reader.delete(detail(compute)),
        ):
            error = error_of(response, 403, "insufficient_scope")
            assert "resources:write" in error["message"]
        compute.refresh_from_db()
        assert compute.name != "x" and compute.status == ResourceStatus.ACTIVE
        assert Resource.objects.count() == 2  # the compute and its VPC: nothing was created


class TestOtherAccounts:
    def test_another_accounts_resource_is_404_everywhere(self, api, others_compute):
        unknown = api.get("/v1/resources/RES_0000000000")
        for response in (
            api.get(detail(others_compute)),
            api.get(detail(others_compute) + "?expand=vpc"),
            api.patch(detail(others_compute), {"name": "mine"}, format="json"),
            api.delete(detail(others_compute)),
        ):
            assert response.status_code == 404
            assert response.json()["error"]["message"] == unknown.json()["error"]["message"] == "Resource not available"
        others_compute.refresh_from_db()
        assert others_compute.name != "mine" and others_compute.status == ResourceStatus.ACTIVE

    @pytest.mark.parametrize(
        "bad_id", ["RES_123", "FUNC_0000000001", "res_0000000001", "RES_%00", "RES_00000000011", "x" * 300]
    )
    def test_malformed_ids_are_404(self, api, bad_id):
        error_of(api.get(f"{LIST}/{bad_id}"), 404, "not_found", "Resource not available")
        error_of(api.delete(f"{LIST}/{bad_id}"), 404, "not_found")

    def test_lists_show_only_own_resources(self, api, compute, others_compute):
        assert set(ids(api.get(LIST))) == {compute.public_id, compute.vpc.public_id}

    def test_another_accounts_vpc_cannot_be_used(self, api, others_compute):
        body = {**COMPUTE, "vpc": others_compute.vpc.public_id}
        assert invalid_request(post(api, body)) == {
            "vpc": [f"No VPC '{others_compute.vpc.public_id}' in us-east-1 for this account."]
        }


class TestList:
    def test_bare_array_newest_first_with_headers(self, api, account, vpc):
        older = ComputeFactory(account=account, vpc=vpc, created_at=timezone.now() - timedelta(days=2))
        newer = ComputeFactory(account=account, vpc=vpc)
        response = api.get(LIST, {"limit": 2}, HTTP_PREFER="count=exact")
        assert ids(response) == [newer.public_id, vpc.public_id]
        assert response["X-Total-Count"] == "3" and response["Preference-Applied"] == "count=exact"
        assert 'rel="next"' in response["Link"] and "cursor=" in response["Link"]
        assert "offset=2" in response["Link"]  # the last link
        assert "X-Total-Count" not in api.get(LIST, {"limit": 2})  # counts only on request
        assert ids(api.get(LIST, {"limit": 2, "offset": 2})) == [older.public_id]
        assert set(response.json()[0]) == OBJECT_FIELDS

    def test_ordering_with_id_tie_break(self, api, account, vpc):
        moment = timezone.now() - timedelta(hours=1)
        twins = [ComputeFactory(account=account, vpc=vpc, created_at=moment) for _ in range(3)]
        by_id = [resource.public_id for resource in sorted(twins, key=lambda resource: resource.pk)]
        assert ids(api.get(LIST, {"ordering": "created_at"}))[:3] == by_id
        assert ids(api.get(LIST, {"ordering": "-created_at"}))[1:] == by_id[::-1]

    def test_deleted_resources_are_hidden_unless_asked_for(self, api, account, vpc):
        gone = ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.DELETED)
        assert gone.public_id not in ids(api.get(LIST))
        assert ids(api.get(LIST, {"status": "deleted"})) == [gone.public_id]
        assert ids(api.get(LIST, {"filter": '{"status": "deleted"}'})) == [gone.public_id]
        assert gone.public_id in ids(api.get(LIST, {"filter": '{"$or": [{"status": "deleted"}, {"type": "vpc"}]}'}))
        assert api.get(detail(gone)).json()["status"] == "deleted"

    def test_plain_parameters(self, api, account, vpc):
        failed = ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.FAILED)
        europe = VpcFactory(account=account, region="eu-west-1")
        assert ids(api.get(LIST, {"type": "vpc"})) == [europe.public_id, vpc.public_id]
        assert ids(api.get(LIST, {"region": "eu-west-1"})) == [europe.public_id]
        assert ids(api.get(LIST, {"status": "failed"})) == [failed.public_id]
        assert ids(api.get(LIST, {"type": "compute", "status": "active"})) == []

    def test_the_contracts_filter_example(self, api, account, vpc):
        recent = ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.PENDING)
        ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.FAILED)
        ComputeFactory(account=account, vpc=vpc, created_at=timezone.now() - timedelta(days=400))
        europe = VpcFactory(account=account, region="eu-west-1")
        ComputeFactory(account=account, vpc=europe, region="eu-west-1")
        since = (timezone.now() - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        document = {"region": "us-east-1", "status": {"$in": ["active", "pending"]}, "created_at": {"$gte": since}}
        assert ids(api.get(LIST, {"filter": json.dumps(document), "type": "compute"})) == [recent.public_id]

    @pytest.mark.parametrize(
        ("document", "expected"),
        [
            ({"tags.env": "prod"}, ["prod"]),
            ({"tags.env": {"$ne": "prod"}}, ["staging", "untagged", "vpc"]),
            ({"tags.env": {"$exists": False}}, ["untagged", "vpc"]),
            ({"name": {"$startswith": "api-"}}, ["prod", "staging"]),
            ({"name": {"$contains": "tag"}}, ["staging", "untagged"]),
            ({"instance_type": {"$startswith": "m5."}}, ["staging"]),
            ({"$not": {"type": "compute"}}, ["vpc"]),
            ({"$or": [{"tags.env": "staging"}, {"name": "untagged"}]}, ["staging", "untagged"]),
        ],
    )
    def test_filter_fields_and_operators(self, api, account, vpc, document, expected):
        ComputeFactory(account=account, vpc=vpc, name="api-prod", tags={"env": "prod"})
        ComputeFactory(account=account, vpc=vpc, name="api-staging", instance_type="m5.large", tags={"env": "staging"})
        ComputeFactory(account=account, vpc=vpc, name="untagged", tags={})
        found = api.get(LIST, {"filter": json.dumps(document)}).json()
        labels = {"main": "vpc", "api-prod": "prod", "api-staging": "staging", "untagged": "untagged"}
        assert sorted(labels[item["name"]] for item in found) == expected

    def test_filter_by_id_and_vpc(self, api, account, compute):
        other_vpc = VpcFactory(account=account)
        ComputeFactory(account=account, vpc=other_vpc)
        assert ids(api.get(LIST, {"filter": json.dumps({"vpc": compute.vpc.public_id})})) == [compute.public_id]
        assert ids(api.get(LIST, {"filter": json.dumps({"id": {"$in": [compute.public_id]}})})) == [compute.public_id]

    @pytest.mark.parametrize(
        ("params", "parameter"),
        [
            ({"limit": "0"}, "limit"),
            ({"limit": "201"}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"offset": "-1"}, "offset"),
            ({"offset": "1e3"}, "offset"),
            ({"filter": "{not json"}, "filter"),
            ({"filter": "[]"}, "filter"),
            ({"filter": '{"colour": "red"}'}, "filter"),
            ({"filter": '{"status": {"$regex": "a"}}'}, "filter"),
            ({"filter": '{"status": "sleeping"}'}, "filter"),
            ({"filter": '{"region": "mars-1"}'}, "filter"),
            ({"filter": '{"created_at": {"$gte": 5}}'}, "filter"),
            ({"filter": '{"created_at": {"$gte": "yesterday"}}'}, "filter"),
            ({"filter": '{"name": {"$contains": "a\\u0000"}}'}, "filter"),
            ({"filter": json.dumps({"name": "x" * 3000})}, "filter"),
            ({"filter": json.dumps({"$and": [{"$and": [{"$and": [{"$and": [{"type": "vpc"}]}]}]}]})}, "filter"),
            ({"filter": json.dumps({"$or": [{"name": str(n)} for n in range(21)]})}, "filter"),
            ({"expand": "owner"}, "expand"),
            ({"ordering": "name"}, "ordering"),
            ({"ordering": "-updated_at"}, "ordering"),
            ({"type": "database"}, "type"),
            ({"region": "us-east"}, "region"),
            ({"status": "running"}, "status"),
        ],
    )
    def test_bad_parameters_are_400(self, api, params, parameter):
        invalid_parameter(api.get(LIST, params), parameter)

    @pytest.mark.parametrize("url", [LIST, "/v1/resources/RES_0000000001", "/v1/regions"])
    def test_unknown_parameters_are_400_naming_the_accepted_ones(self, api, url):
        message = invalid_parameter(api.get(url, {"limt": "5"}), "limt")
        accepted = message.rpartition("accepts: ")[2]
        if url == LIST:
            assert accepted == "cursor, expand, filter, limit, offset, ordering, region, status, type."
        elif url == "/v1/regions":
            assert accepted == "none."
        else:
            assert accepted == "expand."

    def test_a_retrieve_refuses_list_parameters(self, api, compute):
        invalid_parameter(api.get(detail(compute), {"limit": "5"}), "limit")

    def test_filter_messages_say_what_is_wrong(self, api):
        assert "unknown field 'colour'" in invalid_parameter(api.get(LIST, {"filter": '{"colour": 1}'}), "filter")
        assert "more than 20 conditions" in invalid_parameter(
            api.get(LIST, {"filter": json.dumps({"$or": [{"name": str(n)} for n in range(21)]})}), "filter"
        )


class TestQueryCounts:
    """A list costs the same number of queries whatever the page size: token, count, page."""

    @pytest.fixture
    def many(self, account, vpc):
        for index in range(30):
            resource = ComputeFactory(account=account, vpc=vpc, tags={"n": str(index)})
            if index % 3 == 0:
                resource.type = ResourceType.FUNCTION
                resource.instance_type, resource.vpc, resource.memory_mb = "", None, 256
                resource.save()
                Function.objects.create(
                    account=account, resource=resource, name=f"fn-{index}", runtime="Python 3.12", handler="a.b"
                )

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"filter": json.dumps({"tags.n": {"$exists": True}, "vpc": {"$exists": True}})},
            {"filter": json.dumps({"vpc": "<vpc>", "name": {"$startswith": "web-"}}), "type": "compute"},
            {"expand": "vpc,function"},
            {"status": "active", "ordering": "created_at", "expand": "function"},
        ],
    )
    def test_constant_queries(self, api, vpc, many, django_assert_num_queries, params):
        params = {name: value.replace("<vpc>", vpc.public_id) for name, value in params.items()}
        api.get(LIST)  # the first request of a token looks it up, records its use and caches it
        for limit in (1, 25, 200):
            with django_assert_num_queries(1):  # the page (no count unless asked for)
                response = api.get(LIST, {**params, "limit": limit})
            total = int(api.get(LIST, {**params, "limit": 1}, HTTP_PREFER="count=exact")["X-Total-Count"])
            assert len(response.json()) == min(limit, total)
            assert response.json()

    def test_expanded_list_nests_objects(self, api, many, django_assert_num_queries):
        api.get(LIST)
        with django_assert_num_queries(1):
            found = api.get(LIST, {"expand": "vpc,function", "limit": 200}).json()
        functions = [item for item in found if item["type"] == "function"]
        computes = [item for item in found if item["type"] == "compute"]
        assert len(functions) == 10 and len(computes) == 20
        assert all(item["function"]["name"].startswith("fn-") and item["memory"] == "256MB" for item in functions)
        assert all(item["vpc"]["type"] == "vpc" and item["function"] is None for item in computes)

    def test_retrieve_with_expand(self, api, compute, django_assert_num_queries):
        api.get(LIST)
        with django_assert_num_queries(1):  # the token is cached: the object and what it expands, joined
            assert api.get(detail(compute), {"expand": "vpc,function"}).status_code == 200


class TestCreate:
    @pytest.mark.parametrize("field", ["name", "region", "instance_type", "vpc"])
    @pytest.mark.parametrize("value", [123, 1.5, True, ["web"], {"a": "b"}])
    def test_text_fields_take_only_strings(self, api, account, field, value):
        """Numbers used to be turned into text (a name of 1e300 became "1e+300"); the schema says string."""
        details = invalid_request(post(api, {**COMPUTE, field: value}))
        assert field in details
        assert not Resource.objects.filter(account=account, type="compute").exists()

    def test_compute_in_the_default_vpc(self, api, account):
        response = post(api, {**COMPUTE, "name": "web-1", "tags": {"env": "prod"}})
        assert response.status_code == 201
        body = response.json()
        assert body["id"].startswith("RES_") and body["status"] == "pending"
        assert body["provisioning_started_at"] == body["created_at"]
        assert response["Location"] == f"http://testserver/v1/resources/{body['id']}"
        assert body["memory"] == "1024MB" and body["type"] == "compute" and body["name"] == "web-1"
        default = Resource.objects.get(public_id=body["vpc"])
        assert (default.type, default.name, default.region, default.account) == ("vpc", "default", "us-east-1", account)
        again = post(api, COMPUTE).json()
        assert again["vpc"] == default.public_id
        assert Resource.objects.filter(type="vpc").count() == 1
        europe = post(api, {**COMPUTE, "region": "eu-west-1"}).json()
        assert europe["vpc"] != default.public_id and europe["region"] == "eu-west-1"

    def test_vpc_by_name_or_id(self, api, vpc):
        assert post(api, {**COMPUTE, "vpc": "main"}).json()["vpc"] == vpc.public_id
        assert post(api, {**COMPUTE, "vpc": vpc.public_id}).json()["vpc"] == vpc.public_id

    def test_vpc(self, api):
        response = post(api, {"type": "vpc", "region": "eu-west-1", "name": "backend", "cidr_block": "10.1.0.0/16"})
        assert response.status_code == 201
        body = response.json()
        assert (body["type"], body["name"], body["vpc"], body["memory"], body["instance_type"]) == (
            "vpc",
            "backend",
            None,
            None,
            None,
        )
        assert Resource.objects.get(public_id=body["id"]).cidr_block == "10.1.0.0/16"
        assert post(api, {**COMPUTE, "region": "eu-west-1", "vpc": "backend"}).json()["vpc"] == body["id"]

    def test_duplicate_vpc_name_is_409(self, api, vpc):
        response = post(api, {"type": "vpc", "region": vpc.region, "name": vpc.name})
        error_of(response, 409, "conflict", "A VPC named 'main' already exists in us-east-1.")
        assert post(api, {"type": "vpc", "region": "eu-west-1", "name": vpc.name}).status_code == 201

    def test_malformed_json(self, api):
        response = api.post(LIST, data='{"region": ', content_type="application/json")
        invalid_request(response)

    def test_not_json(self, api):
        invalid_request(api.post(LIST, data="region=us-east-1", content_type="application/x-www-form-urlencoded"))

    @pytest.mark.parametrize("body", [[], "text", 5, None])
    def test_body_not_an_object(self, api, body):
        invalid_request(api.post(LIST, data=json.dumps(body), content_type="application/json"))

    def test_missing_fields(self, api):
        assert invalid_request(post(api, {})) == {
            "region": ["This field is required."],
            "instance_type": ["This field is required."],
            "vpc": ["This field is required."],
        }
        assert invalid_request(post(api, {"type": "vpc"})) == {
            "region": ["This field is required."],
            "name": ["This field is required."],
        }
        assert invalid_request(post(api, {"region": "mars-1", "vpc": "default"})) == {
            "region": ["'mars-1' is not a valid region."],
            "instance_type": ["This field is required."],
        }
        assert invalid_request(post(api, {"region": "us-east-1"})) == {
            "instance_type": ["This field is required."],
            "vpc": ["This field is required."],
        }
        assert invalid_request(post(api, {"type": "vpc", "region": "us-east-1"})) == {
            "name": ["This field is required."]
        }

    @pytest.mark.parametrize(
        ("changes", "field", "message"),
        [
            ({"region": "mars-1"}, "region", "'mars-1' is not a valid region."),
            ({"region": "us-east"}, "region", "'us-east' is not a valid region."),
            ({"region": ["us-east-1"]}, "region", "Not a valid string."),
            ({"instance_type": "t2.gigantic"}, "instance_type", "'t2.gigantic' is not a valid instance type."),
            ({"instance_type": 7}, "instance_type", "Not a valid string."),
            ({"vpc": "nowhere"}, "vpc", "No VPC 'nowhere' in us-east-1 for this account."),
            ({"vpc": "RES_0000000000"}, "vpc", "No VPC 'RES_0000000000' in us-east-1 for this account."),
            ({"vpc": "a\x00b"}, "vpc", "Null characters are not allowed."),
            ({"vpc": "x" * 101}, "vpc", "Ensure this field has no more than 100 characters."),
            ({"name": "n" * 101}, "name", "Ensure this field has no more than 100 characters."),
            ({"name": "bad\x00name"}, "name", "Null characters are not allowed."),
            ({"name": "line\nbreak"}, "name", "Names may not contain control characters."),
            ({"name": None}, "name", "This field may not be null."),
            ({"tags": ["a"]}, "tags", "Tags must be a JSON object of string keys to string values."),
            ({"tags": {"env": 1}}, "tags", "The value of tag 'env' must be a string."),
            ({"tags": {"env": "a\x00"}}, "tags", "The value of tag 'env' must be at most 256 printable characters."),
            ({"tags": {"env": "v" * 257}}, "tags", "The value of tag 'env' must be at most 256 printable characters."),
            ({"tags": {f"k{n}": "v" for n in range(51)}}, "tags", "At most 50 tags are allowed."),
            ({"tags": {"9lives": "v"}}, "tags", None),
            ({"tags": {"a" * 65: "v"}}, "tags", None),
            ({"type": "function"}, "type", "Function resources are created by POST /v1/functions."),
            ({"type": "database"}, "type", '"database" is not a valid choice.'),
            ({"cidr_block": "10.0.0.0/16"}, "cidr_block", "Only allowed for a VPC."),
            ({"instanceType": "t2.micro"}, "instanceType", "Unknown field."),
        ],
    )
    def test_invalid_compute_fields(self, api, changes, field, message):
        details = invalid_request(post(api, {**COMPUTE, **changes}))
        assert list(details) == [field]
        if message is not None:
            assert details[field] == [message]
        assert not Resource.objects.exists()  # nothing half-written: not even the default VPC

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"name": "has space"}, "name"),
            ({"name": "RES_0123456789"}, "name"),
            ({"name": "-dash"}, "name"),
            ({"cidr_block": "10.0.0.0/8"}, "cidr_block"),
            ({"cidr_block": "10.0.0.1/16"}, "cidr_block"),
            ({"cidr_block": "fd00::/48"}, "cidr_block"),
            ({"instance_type": "t2.micro"}, "instance_type"),
            ({"vpc": "default"}, "vpc"),
        ],
    )
    def test_invalid_vpc_fields(self, api, changes, field):
        details = invalid_request(post(api, {"type": "vpc", "region": "us-east-1", "name": "net", **changes}))
        assert list(details) == [field]

    def test_vpc_in_another_region(self, api, vpc):
        details = invalid_request(post(api, {**COMPUTE, "region": "eu-west-1", "vpc": vpc.public_id}))
        assert details == {
            "vpc": [f"VPC {vpc.public_id} is in us-east-1; a resource must be in its VPC's region (eu-west-1)."]
        }

    @pytest.mark.parametrize("state", [ResourceStatus.DELETING, ResourceStatus.FAILED])
    def test_vpc_not_usable(self, api, vpc, state):
        vpc.status = state
        vpc.save()
        assert invalid_request(post(api, {**COMPUTE, "vpc": "main"})) == {
            "vpc": [f"VPC {vpc.public_id} is {state}; choose another VPC."]
        }

    def test_deleted_vpc_is_not_found(self, api, vpc):
        vpc.status = ResourceStatus.DELETED
        vpc.save()
        assert "vpc" in invalid_request(post(api, {**COMPUTE, "vpc": vpc.public_id}))


class TestRetrieve:
    def test_object(self, api, compute):
        body = api.get(detail(compute)).json()
        assert set(body) == OBJECT_FIELDS
        assert body["id"] == compute.public_id and body["vpc"] == compute.vpc.public_id
        assert body["memory"] == "1024MB" and body["tags"] == {"env": "prod"}
        assert body["failure_reason"] is None and body["last_execution"] is None

    def test_expand_vpc(self, api, compute):
        body = api.get(detail(compute), {"expand": "vpc"}).json()
        assert body["vpc"]["id"] == compute.vpc.public_id and set(body["vpc"]) == OBJECT_FIELDS
        assert "function" not in body

    def test_expand_function(self, api, account):
        resource = Resource.objects.create(
            account=account,
            type="function",
            region="eu-west-1",
            memory_mb=1024,
            status="active",
            last_execution=timezone.now(),
        )
        function = Function.objects.create(
            account=account,
            resource=resource,
            name="user-authentication",
            runtime="Node.js 20",
            handler="index.handler",
            memory_mb=1024,
            region="eu-west-1",
            tags=["auth"],
        )
        plain = api.get(detail(resource)).json()
        assert plain["type"] == "function" and plain["memory"] == "1024MB" and plain["last_execution"]
        assert plain["vpc"] is None and plain["instance_type"] is None
        expanded = api.get(detail(resource), {"expand": "function"}).json()
        assert expanded["function"]["id"] == function.public_id
        assert expanded["function"]["name"] == "user-authentication" and expanded["function"]["memory"] == "1024MB"

    def test_expand_function_on_a_compute_is_null(self, api, compute):
        assert api.get(detail(compute), {"expand": "function"}).json()["function"] is None

    @pytest.mark.parametrize("url", ["detail", "list"])
    def test_expanding_a_function_needs_functions_read(self, make_client, user, compute, url):
        """A resources:read token must not read handlers, runtimes or environment names through expand."""
        client = make_client(user, scopes=["resources:read"])
        target = detail(compute) if url == "detail" else LIST
        response = client.get(target, {"expand": "function"})
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "insufficient_scope" and "functions:read" in error["message"]
        assert client.get(target, {"expand": "vpc"}).status_code == 200

    @pytest.mark.parametrize("expand", ["owner", "", "vpc,owner", ","])
    def test_bad_expand(self, api, compute, expand):
        invalid_parameter(api.get(detail(compute), {"expand": expand}), "expand")


class TestUpdate:
    @pytest.mark.parametrize("value", [123, 1e300, False])
    def test_name_takes_only_a_string(self, api, compute, value):
        details = invalid_request(api.patch(detail(compute), {"name": value}, format="json"))
        assert list(details) == ["name"]

    def test_rename_and_replace_tags(self, api, compute):
        response = api.patch(detail(compute), {"name": "renamed", "tags": {"team": "core"}}, format="json")
        assert response.status_code == 200
        assert (response.json()["name"], response.json()["tags"]) == ("renamed", {"team": "core"})
        compute.refresh_from_db()
        assert (compute.name, compute.tags) == ("renamed", {"team": "core"})
        assert api.patch(detail(compute), {"tags": {}}, format="json").json()["tags"] == {}
        assert api.patch(detail(compute), {"name": ""}, format="json").json()["name"] is None

    @pytest.mark.parametrize("field", ["region", "status", "type", "instance_type", "vpc", "id", "created_at"])
    def test_other_fields_are_400(self, api, compute, field):
        details = invalid_request(api.patch(detail(compute), {"name": "x", field: "us-west-2"}, format="json"))
        assert details == {field: ["This field cannot be changed."]}
        compute.refresh_from_db()
        assert compute.name != "x"

    @pytest.mark.parametrize(
        "body",
        [{"colour": "red"}, {"tags": "env=prod"}, {"tags": None}, {"name": 5 * "long" * 30}, {"name": ["a"]}],
    )
    def test_invalid_bodies(self, api, compute, body):
        invalid_request(api.patch(detail(compute), body, format="json"))

    def test_malformed_json(self, api, compute):
        invalid_request(api.patch(detail(compute), data="{", content_type="application/json"))

    def test_vpc_names_stay_unique_and_valid(self, api, account, vpc):
        VpcFactory(account=account, name="other", region=vpc.region)
        error_of(api.patch(detail(vpc), {"name": "other"}, format="json"), 409, "conflict")
        assert "name" in invalid_request(api.patch(detail(vpc), {"name": "no spaces"}, format="json"))

    def test_deleted_resource_is_409(self, api, compute):
        compute.status = ResourceStatus.DELETED
        compute.save()
        error_of(api.patch(detail(compute), {"name": "x"}, format="json"), 409, "conflict")

    def test_put_is_not_allowed(self, api, compute):
        assert api.put(detail(compute), {"name": "x"}, format="json").status_code == 405


class TestDelete:
    def test_accepted_and_deleting(self, api, compute):
        response = api.delete(detail(compute))
        assert response.status_code == 202
        assert response.json()["status"] == "deleting"
        compute.refresh_from_db()
        assert compute.status == ResourceStatus.DELETING and compute.deleting_started_at is not None
        error_of(api.delete(detail(compute)), 409, "conflict", f"Resource {compute.public_id} is already deleting.")

    @pytest.mark.parametrize("body", ["None", "{", "not json"])
    def test_a_body_on_delete_is_ignored(self, api, compute, body):
        """The audit trail read the body after the deletion: a malformed one turned the 202 into a 500."""
        response = api.generic("DELETE", detail(compute), data=body, content_type="application/json")
        assert response.status_code == 202
        compute.refresh_from_db()
        assert compute.status == ResourceStatus.DELETING

    def test_failed_resources_can_be_deleted(self, api, compute):
        compute.status, compute.failure_reason = ResourceStatus.FAILED, "boom"
        compute.save()
        body = api.delete(detail(compute)).json()
        assert body["status"] == "deleting" and body["failure_reason"] is None

    @pytest.mark.parametrize("state", [ResourceStatus.PENDING, ResourceStatus.PROVISIONING, ResourceStatus.DELETED])
    def test_not_deletable_now(self, api, compute, state):
        compute.status = state
        compute.save()
        error_of(api.delete(detail(compute)), 409, "conflict")

    def test_vpc_in_use_is_409(self, api, compute):
        error = error_of(api.delete(detail(compute.vpc)), 409, "conflict")
        assert error["message"] == f"VPC {compute.vpc.public_id} is still used by 1 live resource(s)."
        compute.status = ResourceStatus.DELETED
        compute.save()
        assert api.delete(detail(compute.vpc)).status_code == 202

    def test_function_resource_is_deleted_through_its_function(self, api, account):
        resource = Resource.objects.create(
            account=account, type="function", region="us-east-1", memory_mb=128, status="active"
        )
        error = error_of(api.delete(detail(resource)), 409, "conflict")
        assert "delete the function" in error["message"]


class TestIdempotency:
    def test_a_retry_with_the_same_key_creates_nothing(self, api):
        first = post(api, COMPUTE, HTTP_IDEMPOTENCY_KEY="create-web-1")
        again = post(api, COMPUTE, HTTP_IDEMPOTENCY_KEY="create-web-1")
        assert first.status_code == again.status_code == 201
        assert again["Idempotent-Replayed"] == "true"
        assert again.json() == first.json() and again["Location"] == first["Location"]
        assert Resource.objects.filter(type="compute").count() == 1

    def test_the_same_key_with_another_body_is_422(self, api):
        post(api, COMPUTE, HTTP_IDEMPOTENCY_KEY="k1")
        error_of(post(api, {**COMPUTE, "name": "other"}, HTTP_IDEMPOTENCY_KEY="k1"), 422, "idempotency_key_reused")


@pytest.mark.django_db(transaction=True)
class TestCreateInOneTransaction:
    """The resource, its outbox entry and its audit event commit together, or nothing does."""

    def test_a_creation_costs_one_transaction_and_its_send(self, api, account, django_assert_num_queries):
        assert post(api, COMPUTE).status_code == 201  # the token is cached, the default VPC exists
        # BEGIN, the VPC under a shared lock, the row (in the savepoint drawing its public ID), the outbox
        # entry, the audit event, COMMIT (the service's savepoint inside the view's transaction); then the
        # message is marked sent under its lock and handed to the broker: BEGIN, UPDATE, COMMIT.
        with django_assert_num_queries(13):
            response = post(api, {**COMPUTE, "name": "web-2", "tags": {"env": "prod"}})
        assert response.status_code == 201
        created = Resource.objects.get(public_id=response.json()["id"])
        event = AuditEvent.objects.get(object_id=created.public_id)
        assert (event.action, event.changed_fields) == (
            "resource.create",
            ["instance_type", "name", "region", "tags", "vpc"],
        )
        message = OutboxMessage.objects.get(args=[created.pk])
        assert (message.task_name, message.sent_at is not None) == ("resources.tasks.provision_resource", True)

    def test_a_failure_after_the_insert_leaves_nothing(self, api, account, monkeypatch):
        def broken_save(self, *args, **kwargs):
            raise DatabaseError("audit table unavailable")

        monkeypatch.setattr(AuditEvent, "save", broken_save)
        response = post(api, {**COMPUTE, "name": "web-1"})
        assert error_of(response, 500, "internal_error")
        assert not Resource.objects.filter(account=account).exists()  # neither the instance nor its default VPC
        assert not OutboxMessage.objects.exists()
        monkeypatch.undo()
        assert not AuditEvent.objects.exists()
        assert post(api, {**COMPUTE, "name": "web-1"}).status_code == 201  # nothing was left half done
