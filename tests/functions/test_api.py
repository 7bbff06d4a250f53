"""/v1/functions and /v1/runtimes: list, filters, create, retrieve, update, delete and every error."""

import json
from datetime import timedelta

import pytest
from django.db import DatabaseError
from django.utils import timezone

from elbia.accounts.models import IdempotencyRecord
from elbia.audit.models import AuditEvent
from elbia.models import OutboxMessage
from functions.models import Function, FunctionStatus, FunctionTag
from resources.models import Resource, ResourceStatus, ResourceType
from tests.functions.conftest import SECRET
from tests.functions.factories import FunctionFactory
from tests.resources.conftest import error_of

pytestmark = pytest.mark.django_db

LIST = "/v1/functions"
OBJECT_FIELDS = {
    "id",
    "name",
    "runtime",
    "handler",
    "status",
    "memory",
    "memory_mb",
    "timeout",
    "region",
    "tags",
    "environment",
    "resource",
    "created_at",
    "deployment_started",
    "deployed_at",
    "last_executed",
    "failure_reason",
    "provider_id",
    "code_sha256",
    "code_size",
}
NEW = {"name": "user-authentication", "runtime": "Node.js 20", "handler": "index.handler"}


def detail(function) -> str:
    return f"{LIST}/{function.public_id if isinstance(function, Function) else function}"


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


def patch(api, function, body):
    return api.patch(detail(function), body, format="json")


class TestAuthentication:
    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("get", LIST),
            ("post", LIST),
            ("get", "/v1/functions/FUNC_0000000001"),
            ("patch", "/v1/functions/FUNC_0000000001"),
            ("delete", "/v1/functions/FUNC_0000000001"),
            ("get", "/v1/runtimes"),
        ],
    )
    def test_no_token_is_401(self, anonymous_api, method, path):
        response = getattr(anonymous_api, method)(path)
        error_of(response, 401, "unauthorized", "Invalid or missing API token")
        assert response["WWW-Authenticate"].startswith("Bearer ")

    def test_reading_needs_the_read_scope(self, make_client, user, function):
        writer = make_client(user, scopes=["functions:write", "resources:read"])
        for response in (writer.get(LIST), writer.get(detail(function)), writer.get("/v1/runtimes")):
            error = error_of(response, 403, "insufficient_scope")
            assert "functions:read" in error["message"]

    def test_writing_needs_the_write_scope(self, make_client, user, function):
        reader = make_client(user, scopes=["functions:read", "resources:write"])
        for response in (
            post(reader, NEW | {"name": "other"}),
            patch(reader, function, {"timeout_s": 10}),
            reader.delete(detail(function)),
        ):
            error = error_of(response, 403, "insufficient_scope")
            assert "functions:write" in error["message"]
        function.refresh_from_db()
        assert (function.timeout_s, function.status) == (3, FunctionStatus.ACTIVE)
        assert Function.objects.count() == 1


class TestOtherAccounts:
    def test_another_accounts_function_is_404_everywhere(self, api, others_function):
        unknown = api.get("/v1/functions/FUNC_0000000000")
        for response in (
            api.get(detail(others_function)),
            patch(api, others_function, {"timeout_s": 10}),
            patch(api, others_function, {"status": "deprecated"}),
            api.delete(detail(others_function)),
        ):
            error_of(response, 404, "not_found", "Resource not available")
            assert response.json()["error"]["message"] == unknown.json()["error"]["message"]
        others_function.refresh_from_db()
        assert (others_function.timeout_s, others_function.status) == (3, FunctionStatus.ACTIVE)

    @pytest.mark.parametrize(
        "bad_id", ["FUNC_123", "RES_0000000001", "func_0000000001", "FUNC_%00", "FUNC_00000000011", "x" * 300]
    )
    def test_malformed_ids_are_404(self, api, bad_id):
        error_of(api.get(f"{LIST}/{bad_id}"), 404, "not_found", "Resource not available")
        error_of(api.delete(f"{LIST}/{bad_id}"), 404, "not_found")

    def test_lists_show_only_own_functions(self, api, function, others_function):
        assert ids(api.get(LIST)) == [function.public_id]
        assert ids(api.get(LIST, {"tag": "auth"})) == [function.public_id]

    def test_names_are_unique_per_account_only(self, api, others_function):
        assert post(api, NEW).status_code == 201


class TestRuntimes:
    def test_catalog(self, api):
        runtimes = {item["name"]: item for item in api.get("/v1/runtimes").json()}
        assert list(runtimes) == [
            "Node.js 18",
            "Node.js 20",
            "Node.js 22",
            "Python 3.11",
            "Python 3.12",
            "Python 3.13",
            "Java 21",
            "Go 1.x",
            "Ruby 3.3",
            ".NET 8",
        ]
        assert {name for name, item in runtimes.items() if item["deprecated"]} == {"Node.js 18", "Go 1.x"}
        assert runtimes["Node.js 20"] == {
            "name": "Node.js 20",
            "identifier": "nodejs20.x",
            "language": "javascript",
            "handler_format": "file.function",
            "handler_example": "index.handler",
            "handler_pattern": runtimes["Node.js 20"]["handler_pattern"],
            "deprecated": False,
        }
        assert runtimes["Java 21"]["handler_format"] == "package.Class::method"
        assert runtimes[".NET 8"]["handler_format"] == "Assembly::Namespace.Class::Method"

    def test_every_example_handler_is_accepted_on_create(self, api):
        for number, item in enumerate(api.get("/v1/runtimes").json()):
            if not item["deprecated"]:
                body = {"name": f"fn-{number}", "runtime": item["name"], "handler": item["handler_example"]}
                assert post(api, body).status_code == 201, item["name"]


class TestList:
    def test_seed_fields_newest_first(self, api, account):
        old = FunctionFactory(account=account, created_at=timezone.now() - timedelta(days=1))
        new = FunctionFactory(account=account, last_executed=timezone.now())
        response = api.get(LIST, HTTP_PREFER="count=exact")
        assert ids(response) == [new.public_id, old.public_id]
        item = response.json()[0]
        assert set(item) == OBJECT_FIELDS
        assert item["name"] == new.name and item["created_at"].endswith("Z") and item["last_executed"].endswith("Z")
        assert item["resource"] == new.resource.public_id
        assert response["X-Total-Count"] == "2"

    def test_ordering(self, api, account):
        first = FunctionFactory(account=account, created_at=timezone.now() - timedelta(hours=2))
        second = FunctionFactory(account=account, created_at=first.created_at)  # a tie, broken by id
        third = FunctionFactory(account=account)
        assert ids(api.get(LIST, {"ordering": "created_at"})) == [first.public_id, second.public_id, third.public_id]
        assert ids(api.get(LIST, {"ordering": "-created_at"})) == [third.public_id, second.public_id, first.public_id]
        invalid_parameter(api.get(LIST, {"ordering": "name"}), "ordering")

    def test_pagination(self, api, account):
        made = [FunctionFactory(account=account) for _ in range(5)]
        response = api.get(LIST, {"limit": 2, "offset": 2, "ordering": "created_at"}, HTTP_PREFER="count=exact")
        assert ids(response) == [made[2].public_id, made[3].public_id]
        assert response["X-Total-Count"] == "5"
        assert 'rel="next"' in response["Link"] and 'rel="prev"' in response["Link"]
        invalid_parameter(api.get(LIST, {"limit": 0}), "limit")
        invalid_parameter(api.get(LIST, {"offset": -1}), "offset")

    def test_filter_by_status(self, api, account):
        active = FunctionFactory(account=account)
        deprecated = FunctionFactory(account=account, status=FunctionStatus.DEPRECATED)
        failed = FunctionFactory(account=account, status=FunctionStatus.FAILED)
        deleted = FunctionFactory(account=account, status=FunctionStatus.DELETED)
        assert ids(api.get(LIST, {"status": "active"})) == [active.public_id]
        assert ids(api.get(LIST, {"status": "deprecated"})) == [deprecated.public_id]
        assert ids(api.get(LIST, {"status": "failed"})) == [failed.public_id]
        # Deleted functions are hidden unless asked for.
        assert deleted.public_id not in ids(api.get(LIST))
        assert ids(api.get(LIST, {"status": "deleted"})) == [deleted.public_id]

    @pytest.mark.parametrize("value", ["running", "ACTIVE", "", "active ", "a\x00"])
    def test_unknown_status_is_400(self, api, value):
        message = invalid_parameter(api.get(LIST, {"status": value}), "status")
        assert "deprecated" in message

    def test_filter_by_runtime(self, api, account):
        node = FunctionFactory(account=account, runtime="Node.js 20")
        python = FunctionFactory(account=account, runtime="Python 3.12", handler="app.handler")
        assert ids(api.get(LIST, {"runtime": "Node.js 20"})) == [node.public_id]
        assert ids(api.get("/v1/functions?runtime=Python+3.12")) == [python.public_id]
        assert ids(api.get(LIST, {"runtime": "Java 21"})) == []  # a real runtime nobody uses: empty, not an error

    def test_filter_by_runtime_identifier(self, api, account):
        node = FunctionFactory(account=account, runtime="Node.js 20")
        FunctionFactory(account=account, runtime="Node.js 22")
        assert ids(api.get(LIST, {"runtime": "nodejs20.x"})) == [node.public_id]

    @pytest.mark.parametrize("value", ["node", "Node.js 99", "NODEJS20.X", "", "Node.js 20\x00"])
    def test_unknown_runtime_is_400(self, api, value):
        message = invalid_parameter(api.get(LIST, {"runtime": value}), "runtime")
        assert "Node.js 20" in message

    def test_filter_by_tag_matches_any_of_the_tags(self, api, account):
        both = FunctionFactory(account=account, tags=["auth", "payments"])
        auth = FunctionFactory(account=account, tags=["auth"])
        FunctionFactory(account=account, tags=["payments"])
        FunctionFactory(account=account)
        assert ids(api.get(LIST, {"tag": "auth"})) == [auth.public_id, both.public_id]  # each once
        response = api.get(LIST, {"tag": "payments", "limit": 1}, HTTP_PREFER="count=exact")
        assert response["X-Total-Count"] == "2" and len(ids(response)) == 1
        assert ids(api.get(LIST, {"tag": "Auth"})) == []  # tags are case-sensitive

    def test_filters_combine(self, api, account):
        wanted = FunctionFactory(account=account, tags=["auth"], runtime="Node.js 22")
        FunctionFactory(account=account, tags=["auth"], runtime="Node.js 20")
        FunctionFactory(account=account, tags=["auth"], runtime="Node.js 22", status=FunctionStatus.FAILED)
        query = {"tag": "auth", "runtime": "Node.js 22", "status": "active"}
        assert ids(api.get(LIST, query)) == [wanted.public_id]

    @pytest.mark.parametrize("value", ["", "has space", "x" * 65, "-leading", "nul\x00"])
    def test_invalid_tag_is_400(self, api, value):
        invalid_parameter(api.get(LIST, {"tag": value}), "tag")

    @pytest.mark.parametrize(
        "params",
        [
            {},
            {"tag": "auth"},
            {"tag": "auth", "runtime": "Node.js 20", "status": "active", "ordering": "created_at"},
            {"status": "deleted"},
        ],
    )
    def test_constant_queries(self, api, account, django_assert_num_queries, params):
        for number in range(60):
            status = FunctionStatus.DELETED if number % 10 == 0 else FunctionStatus.ACTIVE
            FunctionFactory(account=account, tags=["auth", f"group-{number % 3}"], status=status)
        api.get(LIST)  # the token's first use records last_used_at once
        for limit in (1, 50):
            # the page (functions with their resources, in one join); the token is cached, no count unless asked
            with django_assert_num_queries(1):
                response = api.get(LIST, {**params, "limit": limit})
            assert response.status_code == 200

    def test_a_page_of_tagged_functions_in_one_query(self, api, account, django_assert_num_queries):
        for _ in range(60):
            FunctionFactory(account=account, tags=["auth", "a", "b", "c"])
        api.get(LIST)
        with django_assert_num_queries(1):
            found = api.get(LIST, {"tag": "auth", "limit": 50}).json()
        assert len(found) == 50 and all(item["tags"] == ["auth", "a", "b", "c"] for item in found)
        assert len({item["id"] for item in found}) == 50


class TestCreate:
    def test_created_with_defaults(self, api, account, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks() as queued:
            response = post(api, NEW)
        assert response.status_code == 201, response.content
        body = response.json()
        assert set(body) == OBJECT_FIELDS
        assert body["id"].startswith("FUNC_") and body["status"] == "created"
        assert body["deployment_started"].endswith("Z") and body["deployed_at"] is None
        assert response["Location"] == f"http://testserver/v1/functions/{body['id']}"
        assert (body["memory"], body["memory_mb"], body["timeout"], body["region"]) == ("128MB", 128, 3, "us-east-1")
        assert (body["tags"], body["environment"], body["failure_reason"]) == ([], [], None)
        # Its resource, in the same transaction; provisioning then deployment are queued on commit.
        resource = Resource.objects.get(public_id=body["resource"])
        assert (resource.type, resource.status, resource.memory_mb, resource.name) == (
            ResourceType.FUNCTION,
            ResourceStatus.PENDING,
            128,
            "user-authentication",
        )
        assert resource.account == account
        assert [callback.task_name for callback in queued] == [
            "resources.tasks.provision_resource",
            "functions.tasks.deploy_function",
        ]
        assert api.get(detail(body["id"])).json() == body

    def test_runtime_by_identifier_is_answered_by_name(self, api):
        response = post(api, {**NEW, "runtime": "nodejs20.x"})
        assert response.status_code == 201, response.content
        assert response.json()["runtime"] == "Node.js 20"

    def test_created_with_everything(self, api):
        response = post(
            api,
            NEW
            | {
                "memory_mb": 10240,
                "timeout_s": 900,
                "region": "eu-west-1",
                "tags": ["auth", "team:identity"],
                "environment": {"LOG_LEVEL": "debug", "API_KEY": SECRET},
            },
        )
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["memory"], body["memory_mb"], body["timeout"], body["region"]) == (
            "10240MB",
            10240,
            900,
            "eu-west-1",
        )
        assert body["tags"] == ["auth", "team:identity"]
        assert body["environment"] == ["API_KEY", "LOG_LEVEL"]
        function = Function.objects.get(public_id=body["id"])
        assert function.environment == {"LOG_LEVEL": "debug", "API_KEY": SECRET}  # stored, never shown
        assert set(FunctionTag.objects.filter(function=function).values_list("tag", flat=True)) == {
            "auth",
            "team:identity",
        }
        resource = api.get(f"/v1/resources/{body['resource']}").json()
        assert (resource["type"], resource["memory"], resource["region"]) == ("function", "10240MB", "eu-west-1")

    def test_minimum_values(self, api):
        response = post(api, NEW | {"memory_mb": 128, "timeout_s": 1})
        assert response.status_code == 201
        assert (response.json()["memory_mb"], response.json()["timeout"]) == (128, 1)

    def test_duplicate_name_is_409(self, api, function):
        error = error_of(post(api, NEW), 409, "conflict")
        assert "user-authentication" in error["message"]
        assert Function.objects.count() == 1
        assert Resource.objects.filter(type=ResourceType.FUNCTION).count() == 1  # no resource left behind

    def test_duplicate_name_in_a_race_is_409(self, api, function, monkeypatch):
        # Both requests passed the pre-check: the database's unique constraint decides.
        calls = []

        def taken(**kwargs):
            calls.append(kwargs)
            return len(calls) > 1  # not taken at the pre-check, taken when the insert failed

        monkeypatch.setattr("functions.services._name_taken", taken)
        error_of(post(api, NEW), 409, "conflict")
        assert len(calls) == 2
        assert Function.objects.count() == 1
        assert Resource.objects.filter(type=ResourceType.FUNCTION).count() == 1

    def test_a_deleted_functions_name_can_be_reused(self, api, account):
        FunctionFactory(account=account, name="user-authentication", status=FunctionStatus.DELETED)
        assert post(api, NEW).status_code == 201

    def test_a_deleting_functions_name_is_still_taken(self, api, account):
        FunctionFactory(account=account, name="user-authentication", status=FunctionStatus.DELETING)
        error_of(post(api, NEW), 409, "conflict")

    def test_deprecated_runtime_is_refused_clearly(self, api):
        details = invalid_request(post(api, NEW | {"runtime": "Node.js 18"}))
        assert details["runtime"] == [
            "Node.js 18 is deprecated: new functions cannot use it. Choose one of: Node.js 20, Node.js 22, "
            "Python 3.11, Python 3.12, Python 3.13, Java 21, Ruby 3.3, .NET 8."
        ]
        details = invalid_request(post(api, NEW | {"runtime": "Go 1.x", "handler": "bootstrap"}))
        assert "Go 1.x is deprecated" in details["runtime"][0]
        assert not Function.objects.exists() and not Resource.objects.exists()

    @pytest.mark.parametrize(
        ("fields", "field", "fragment"),
        [
            ({"name": "User-Auth"}, "name", "lowercase"),
            ({"name": "-auth"}, "name", "lowercase"),
            ({"name": "auth-"}, "name", "lowercase"),
            ({"name": "a" * 65}, "name", "1-64"),
            ({"name": "my_function"}, "name", "lowercase"),
            ({"name": "my function"}, "name", "lowercase"),
            ({"name": ""}, "name", "blank"),
            ({"name": 123}, "name", "valid string"),
            ({"name": "a\x00b"}, "name", "Null characters"),
            ({"runtime": "Node.js 99"}, "runtime", "is not a runtime"),
            ({"runtime": None}, "runtime", "null"),
            ({"handler": "index"}, "handler", "expected file.function"),
            ({"handler": "index.handler()"}, "handler", "not a valid handler for Node.js 20"),
            ({"handler": "x" * 100 + ".handler" + "y" * 30}, "handler", "128"),
            ({"handler": "example.Handler::handleRequest"}, "handler", "expected file.function"),
            ({"runtime": "Java 21", "handler": "index.handler"}, "handler", "expected package.Class::method"),
            ({"runtime": "Python 3.12", "handler": "app"}, "handler", "lambda_function.lambda_handler"),
            ({"runtime": ".NET 8", "handler": "Function::Handler"}, "handler", "Assembly::Namespace.Class::Method"),
            ({"runtime": "Ruby 3.3", "handler": "function"}, "handler", "file.function"),
            ({"memory_mb": 127}, "memory_mb", "from 128 to 10240"),
            ({"memory_mb": 10241}, "memory_mb", "from 128 to 10240"),
            ({"memory_mb": 10**30}, "memory_mb", "from 128 to 10240"),
            ({"memory_mb": "256"}, "memory_mb", "valid integer"),
            ({"memory_mb": 256.5}, "memory_mb", "valid integer"),
            ({"memory_mb": True}, "memory_mb", "valid integer"),
            ({"timeout_s": 0}, "timeout_s", "from 1 to 900"),
            ({"timeout_s": 901}, "timeout_s", "from 1 to 900"),
            ({"timeout_s": -5}, "timeout_s", "from 1 to 900"),
            ({"region": "mars-1"}, "region", "not a valid region"),
            ({"region": ""}, "region", "blank"),
            ({"tags": "auth"}, "tags", "list of strings"),
            ({"tags": {"team": "auth"}}, "tags", "list of strings"),
            ({"tags": [1]}, "tags", "must be a string"),
            ({"tags": ["has space"]}, "tags", "invalid"),
            ({"tags": ["x" * 65]}, "tags", "1-64"),
            ({"tags": ["nul\x00"]}, "tags", "invalid"),
            ({"tags": ["a", "a"]}, "tags", "must not repeat"),
            ({"tags": [f"t{n}" for n in range(51)]}, "tags", "At most 50"),
            ({"tags": None}, "tags", "null"),
            ({"environment": ["A"]}, "environment", "JSON object"),
            ({"environment": {"1BAD": "x"}}, "environment", "not a valid variable name"),
            ({"environment": {"BAD-NAME": "x"}}, "environment", "not a valid variable name"),
            ({"environment": {"": "x"}}, "environment", "not a valid variable name"),
            ({"environment": {"A" * 129: "x"}}, "environment", "not a valid variable name"),
            ({"environment": {"AWS_REGION": "x"}}, "environment", "AWS_REGION is reserved"),
            ({"environment": {"_HANDLER": "x"}}, "environment", "_HANDLER is reserved"),
            ({"environment": {"A": 1}}, "environment", "The value of A must be a string"),
            ({"environment": {"A": None}}, "environment", "The value of A must be a string"),
            ({"environment": {"A": "a\x00b"}}, "environment", "NUL"),
            ({"environment": {"A": "x" * 4096}}, "environment", "at most 4096 bytes"),
            ({"environment": {f"V{n}": "x" * 100 for n in range(40)}}, "environment", "at most 4096 bytes"),
            ({"status": "active"}, "status", "read-only"),
            ({"id": "FUNC_0000000001"}, "id", "read-only"),
            ({"memory": "256MB"}, "memory", "memory_mb"),
            ({"timeout": 10}, "timeout", "timeout_s"),
            ({"memoryMb": 256}, "memoryMb", "Unknown field"),
        ],
    )
    def test_bad_input_is_400(self, api, fields, field, fragment):
        details = invalid_request(post(api, NEW | fields))
        assert field in details, details
        assert fragment in " ".join(map(str, details[field])), details
        assert not Function.objects.exists() and not Resource.objects.exists()

    def test_an_unknown_key_is_named_escaped(self, api):
        """A lone surrogate in a key is valid JSON but no UTF-8 response can carry it: the error escapes it."""
        body = json.dumps(NEW | {"\ud800": 1})
        details = invalid_request(api.post(LIST, data=body, content_type="application/json"))
        assert details == {"\\ud800": ["Unknown field."]}
        assert not Function.objects.exists()

    @pytest.mark.parametrize("missing", ["name", "runtime", "handler"])
    def test_required_fields(self, api, missing):
        body = {key: value for key, value in NEW.items() if key != missing}
        assert invalid_request(post(api, body))[missing] == ["This field is required."]

    def test_all_problems_are_reported_at_once(self, api):
        details = invalid_request(post(api, {"name": "Bad Name", "runtime": "Node.js 20", "memory_mb": 1}))
        assert set(details) == {"name", "handler", "memory_mb"}

    @pytest.mark.parametrize(
        ("body", "content_type"),
        [
            ("{not json", "application/json"),
            ("[]", "application/json"),
            ('"text"', "application/json"),
            ("name=a", "application/x-www-form-urlencoded"),
            ('{"name": "a", "name": NaN}', "application/json"),
        ],
    )
    def test_malformed_bodies_are_400(self, api, body, content_type):
        error_of(
            api.post(LIST, body, content_type=content_type), 400, "invalid_request", "Invalid JSON in request body"
        )

    def test_unicode_names_are_refused(self, api):
        assert "name" in invalid_request(post(api, NEW | {"name": "fünction"}))

    def test_lone_surrogate_in_a_value_is_400_not_500(self, api):
        response = api.post(
            LIST,
            '{"name": "a", "runtime": "Node.js 20", "handler": "index.handler", "environment": {"A": "\\ud800"}}',
            content_type="application/json",
        )
        assert "valid Unicode" in invalid_request(response)["environment"][0]

    def test_idempotency_key(self, api):
        body = NEW | {"environment": {"API_KEY": SECRET}}
        first = post(api, body, HTTP_IDEMPOTENCY_KEY="deploy-1")
        retry = post(api, body, HTTP_IDEMPOTENCY_KEY="deploy-1")
        assert (first.status_code, retry.status_code, retry["Idempotent-Replayed"]) == (201, 201, "true")
        assert retry.content == first.content and retry["Location"] == first["Location"]
        assert Function.objects.count() == 1
        error_of(post(api, NEW | {"name": "other"}, HTTP_IDEMPOTENCY_KEY="deploy-1"), 422, "idempotency_key_reused")
        stored = json.dumps(list(IdempotencyRecord.objects.values()), default=str)
        assert first.json()["id"] in stored and SECRET not in stored  # a fingerprint of the body, never the body

    def test_audited_with_field_names_only(self, api):
        body = post(api, NEW | {"environment": {"API_KEY": SECRET}}).json()
        event = AuditEvent.objects.get(action="function.create")
        assert event.object_id == body["id"]
        assert event.changed_fields == ["environment", "handler", "name", "runtime"]
        assert SECRET not in json.dumps(list(AuditEvent.objects.values()), default=str)


class TestRetrieve:
    def test_object(self, api, function):
        function.environment = {"API_KEY": SECRET, "DEBUG": "1"}
        function.save()
        body = api.get(detail(function)).json()
        assert set(body) == OBJECT_FIELDS
        assert body["id"] == function.public_id and body["name"] == "user-authentication"
        assert body["tags"] == ["auth", "team:identity"] and body["environment"] == ["API_KEY", "DEBUG"]
        assert body["resource"] == function.resource.public_id and body["status"] == "active"

    def test_deleted_functions_can_still_be_read(self, api, account):
        deleted = FunctionFactory(account=account, status=FunctionStatus.DELETED)
        assert api.get(detail(deleted)).json()["status"] == "deleted"

    def test_one_query_after_authentication(self, api, function, django_assert_num_queries):
        api.get(LIST)
        with django_assert_num_queries(1):  # the token is cached
            assert api.get(detail(function)).status_code == 200


class TestUpdate:
    def test_config_change_redeploys(self, api, function, django_capture_on_commit_callbacks):
        an_hour_ago = timezone.now() - timedelta(hours=1)
        Function.objects.filter(pk=function.pk).update(deployment_started=an_hour_ago, deployed_at=an_hour_ago)
        with django_capture_on_commit_callbacks() as queued:
            response = patch(api, function, {"handler": "src/auth.main", "memory_mb": 512, "timeout_s": 30})
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["status"] == "deploying"
        assert (body["handler"], body["memory"], body["memory_mb"], body["timeout"]) == (
            "src/auth.main",
            "512MB",
            512,
            30,
        )
        assert body["deployment_started"] > an_hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ")  # requested now
        assert body["deployed_at"] == an_hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ")  # the running deployment's
        assert [callback.task_name for callback in queued] == ["functions.tasks.deploy_function"]
        assert api.get(f"/v1/resources/{body['resource']}").json()["memory"] == "512MB"

    def test_failed_function_can_be_fixed(self, api, account):
        failed = FunctionFactory(account=account, status=FunctionStatus.FAILED, failure_reason="boom")
        body = patch(api, failed, {"handler": "main.handler"}).json()
        assert (body["status"], body["failure_reason"]) == ("deploying", None)

    def test_same_values_do_not_redeploy(self, api, function, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks() as queued:
            body = patch(api, function, {"handler": "index.handler", "memory_mb": 128}).json()
        assert body["status"] == "active" and not queued

    def test_environment_is_a_merge_patch(self, api, function):
        function.environment = {"KEEP": "k", "CHANGE": "old", "DROP": "d"}
        function.save()
        body = patch(api, function, {"environment": {"CHANGE": SECRET, "DROP": None, "ADD": "a"}}).json()
        assert body["environment"] == ["ADD", "CHANGE", "KEEP"] and body["status"] == "deploying"
        function.refresh_from_db()
        assert function.environment == {"KEEP": "k", "CHANGE": SECRET, "ADD": "a"}
        assert SECRET not in json.dumps(body)

    def test_removing_an_unknown_variable_changes_nothing(self, api, function):
        assert patch(api, function, {"environment": {"NOPE": None}}).json()["status"] == "active"

    def test_tags_are_replaced_without_redeploying(self, api, function, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks() as queued:
            body = patch(api, function, {"tags": ["payments", "auth"]}).json()
        assert body["tags"] == ["payments", "auth"] and body["status"] == "active" and not queued
        assert ids(api.get(LIST, {"tag": "payments"})) == [function.public_id]
        assert ids(api.get(LIST, {"tag": "team:identity"})) == []
        assert set(FunctionTag.objects.values_list("tag", flat=True)) == {"payments", "auth"}
        patch(api, function, {"tags": []})
        assert not FunctionTag.objects.exists()

    def test_deprecate(self, api, function):
        body = patch(api, function, {"status": "deprecated"}).json()
        assert body["status"] == "deprecated"
        assert ids(api.get(LIST, {"status": "deprecated"})) == [function.public_id]
        assert patch(api, function, {"status": "deprecated"}).json()["status"] == "deprecated"  # again: no change
        assert patch(api, function, {"tags": ["legacy"]}).json()["tags"] == ["legacy"]
        error = error_of(patch(api, function, {"timeout_s": 10}), 409, "conflict")
        assert "deprecated" in error["message"]

    def test_deprecate_with_tags(self, api, function):
        body = patch(api, function, {"status": "deprecated", "tags": ["legacy"]}).json()
        assert (body["status"], body["tags"]) == ("deprecated", ["legacy"])

    @pytest.mark.parametrize("value", ["active", "deleted", "Deprecated", "", 1])
    def test_status_other_than_deprecated_is_400(self, api, function, value):
        assert "status" in invalid_request(patch(api, function, {"status": value}))
        function.refresh_from_db()
        assert function.status == FunctionStatus.ACTIVE

    def test_deprecating_with_a_config_change_is_400(self, api, function):
        details = invalid_request(patch(api, function, {"status": "deprecated", "memory_mb": 256}))
        assert "own" in details["status"][0]

    @pytest.mark.parametrize("status", [FunctionStatus.CREATED, FunctionStatus.DEPLOYING, FunctionStatus.FAILED])
    def test_only_active_functions_can_be_deprecated(self, api, account, status):
        other = FunctionFactory(account=account, status=status)
        error = error_of(patch(api, other, {"status": "deprecated"}), 409, "conflict")
        assert "Only an active function" in error["message"]

    @pytest.mark.parametrize("status", [FunctionStatus.CREATED, FunctionStatus.DEPLOYING])
    def test_config_change_while_deploying_is_409(self, api, account, status):
        deploying = FunctionFactory(account=account, status=status)
        error = error_of(patch(api, deploying, {"memory_mb": 256}), 409, "conflict")
        assert "once it is active or failed" in error["message"]
        assert patch(api, deploying, {"tags": ["x"]}).status_code == 200  # tags are not configuration

    @pytest.mark.parametrize("status", [FunctionStatus.DELETING, FunctionStatus.DELETED])
    def test_patch_on_a_deleting_or_deleted_function_is_409(self, api, account, status):
        gone = FunctionFactory(account=account, status=status)
        for body in ({"memory_mb": 256}, {"tags": ["x"]}, {"status": "deprecated"}):
            error = error_of(patch(api, gone, body), 409, "conflict")
            assert status in error["message"]

    @pytest.mark.parametrize(
        ("fields", "field", "fragment"),
        [
            ({"name": "renamed"}, "name", "cannot be changed"),
            ({"runtime": "Node.js 22"}, "runtime", "cannot be changed"),
            ({"region": "eu-west-1"}, "region", "cannot be changed"),
            ({"memory": "256MB"}, "memory", "cannot be changed"),
            ({"id": "FUNC_0000000001"}, "id", "cannot be changed"),
            ({"colour": "red"}, "colour", "Unknown field"),
            ({"handler": "Handler::run"}, "handler", "expected file.function"),
            ({"handler": ""}, "handler", "blank"),
            ({"memory_mb": 64}, "memory_mb", "from 128 to 10240"),
            ({"timeout_s": 1000}, "timeout_s", "from 1 to 900"),
            ({"tags": ["a b"]}, "tags", "invalid"),
            ({"environment": {"AWS_REGION": "x"}}, "environment", "reserved"),
            ({"environment": {"A": 1}}, "environment", "must be a string"),
            ({"environment": {"1A": None}}, "environment", "not a valid variable name"),
            ({"environment": {"A": "x" * 5000}}, "environment", "4096"),
        ],
    )
    def test_bad_input_is_400(self, api, function, fields, field, fragment):
        details = invalid_request(patch(api, function, fields))
        assert fragment in " ".join(details[field]), details
        function.refresh_from_db()
        assert (function.status, function.handler, function.memory_mb) == (FunctionStatus.ACTIVE, "index.handler", 128)

    def test_merged_environment_over_the_limit_is_400(self, api, function):
        function.environment = {"BIG": "x" * 4000}
        function.save()
        details = invalid_request(patch(api, function, {"environment": {"MORE": "y" * 200}}))
        assert "4096" in details["environment"][0]

    def test_put_is_not_allowed(self, api, function):
        assert api.put(detail(function), NEW, format="json").status_code == 405

    def test_audited_with_field_names_only(self, api, function):
        patch(api, function, {"environment": {"API_KEY": SECRET}, "timeout_s": 9})
        event = AuditEvent.objects.get(action="function.update")
        assert (event.object_id, event.changed_fields) == (function.public_id, ["environment", "timeout_s"])
        assert SECRET not in json.dumps(list(AuditEvent.objects.values()), default=str)


class TestDelete:
    @pytest.mark.parametrize("status", [FunctionStatus.ACTIVE, FunctionStatus.FAILED, FunctionStatus.DEPRECATED])
    def test_delete_starts_tearing_down(self, api, account, status, django_capture_on_commit_callbacks):
        function = FunctionFactory(account=account, status=status)
        with django_capture_on_commit_callbacks() as queued:
            response = api.delete(detail(function))
        assert response.status_code == 202
        assert response.json()["status"] == "deleting"
        assert api.get(f"/v1/resources/{function.resource.public_id}").json()["status"] == "deleting"
        assert sorted(callback.task_name for callback in queued) == [
            "functions.tasks.delete_function",
            "resources.tasks.deprovision_resource",
        ]

    @pytest.mark.parametrize("status", [FunctionStatus.DELETING, FunctionStatus.DELETED])
    def test_already_deleting_is_409(self, api, account, status):
        function = FunctionFactory(account=account, status=status)
        assert "already" in error_of(api.delete(detail(function)), 409, "conflict")["message"]

    @pytest.mark.parametrize("status", [FunctionStatus.CREATED, FunctionStatus.DEPLOYING])
    def test_deploying_function_is_409(self, api, account, status):
        function = FunctionFactory(account=account, status=status)
        assert "once it is active or failed" in error_of(api.delete(detail(function)), 409, "conflict")["message"]
        assert Resource.objects.get(pk=function.resource_id).status == ResourceStatus.ACTIVE

    def test_resource_still_provisioning_is_409(self, api, account):
        function = FunctionFactory(account=account, status=FunctionStatus.FAILED)
        Resource.objects.filter(pk=function.resource_id).update(status=ResourceStatus.PROVISIONING)
        error = error_of(api.delete(detail(function)), 409, "conflict")
        assert function.resource.public_id in error["message"]
        function.refresh_from_db()
        assert function.status == FunctionStatus.FAILED

    def test_the_resource_cannot_be_deleted_on_its_own(self, api, function):
        error = error_of(api.delete(f"/v1/resources/{function.resource.public_id}"), 409, "conflict")
        assert "delete the function" in error["message"]


class TestEnvironmentValuesNeverShown:
    def test_no_response_contains_a_value(self, api, account):
        responses = [post(api, NEW | {"environment": {"API_KEY": SECRET}, "tags": ["auth"]})]
        body = responses[0].json()
        function = Function.objects.get(public_id=body["id"])
        Function.objects.filter(pk=function.pk).update(status=FunctionStatus.ACTIVE)
        Resource.objects.filter(pk=function.resource_id).update(status=ResourceStatus.ACTIVE)
        responses += [
            api.get(LIST),
            api.get(LIST, {"tag": "auth"}),
            api.get(detail(body["id"])),
            api.get(f"/v1/resources/{body['resource']}", {"expand": "function"}),
            api.get("/v1/resources", {"expand": "function"}),
            patch(api, body["id"], {"environment": {"OTHER": SECRET + "-2"}}),
            post(api, NEW | {"name": "bad", "environment": {"1BAD": SECRET}}),
            post(api, NEW | {"name": "bad", "environment": {"A": SECRET, "B": 1}}),
            post(api, NEW | {"name": "bad", "environment": {"A": SECRET + "\x00"}}),
            post(api, NEW | {"name": "bad", "environment": {"A": SECRET * 200}}),
            post(api, NEW | {"name": "bad", "environment": {"AWS_REGION": SECRET}}),
            post(api, NEW | {"environment": {"API_KEY": SECRET}}),  # the 409
        ]
        Function.objects.filter(pk=function.pk).update(status=FunctionStatus.ACTIVE)
        responses.append(api.delete(detail(body["id"])))
        assert [response.status_code for response in responses] == [201, 200, 200, 200, 200, 200, 200] + [400] * 5 + [
            409,
            202,
        ]
        for response in responses:
            assert SECRET not in response.content.decode(), response.content
        expanded = responses[4].json()["function"]
        assert expanded["environment"] == ["API_KEY"]

    def test_resource_expand_nests_the_function_object(self, api, function):
        body = api.get(f"/v1/resources/{function.resource.public_id}", {"expand": "function"}).json()
        assert body["function"] == api.get(detail(function)).json()


def test_functions_on_a_deprecated_runtime_keep_working(api, account):
    legacy = FunctionFactory(account=account, runtime="Node.js 18")
    body = patch(api, legacy, {"handler": "src/main.handler"}).json()
    assert (body["runtime"], body["handler"], body["status"]) == ("Node.js 18", "src/main.handler", "deploying")
    assert ids(api.get(LIST, {"runtime": "Node.js 18"})) == [legacy.public_id]


@pytest.mark.django_db(transaction=True)
class TestCreateInOneTransaction:
    """The function, its resource, its tags, both outbox entries and the audit event commit together, or nothing."""

    def test_a_creation_costs_one_transaction_and_one_send(self, api, account, django_assert_num_queries):
        assert post(api, {**NEW, "name": "warm-up"}).status_code == 201  # the token is cached
        # BEGIN, the name check, the resource (in its savepoint and the service's), its outbox entry, the
        # function (in the savepoint drawing its public ID), its tags in one INSERT, its outbox entry, the audit
        # event, COMMIT; then both messages in one round trip: BEGIN, UPDATE, COMMIT.
        with django_assert_num_queries(20):
            response = post(api, {**NEW, "tags": ["api", "auth"]})
        assert response.status_code == 201
        function = Function.objects.get(public_id=response.json()["id"])
        assert sorted(FunctionTag.objects.filter(function=function).values_list("tag", flat=True)) == ["api", "auth"]
        assert AuditEvent.objects.get(object_id=function.public_id).action == "function.create"
        messages = OutboxMessage.objects.filter(args__in=[[function.pk], [function.resource_id]]).order_by("id")
        assert [(message.task_name, message.sent_at is not None) for message in messages] == [
            ("resources.tasks.provision_resource", True),
            ("functions.tasks.deploy_function", True),
        ]

    def test_a_failure_after_the_insert_leaves_nothing(self, api, account, monkeypatch):
        def broken_save(self, *args, **kwargs):
            raise DatabaseError("audit table unavailable")

        monkeypatch.setattr(AuditEvent, "save", broken_save)
        assert error_of(post(api, {**NEW, "tags": ["api"]}), 500, "internal_error")
        assert not Function.objects.exists()
        assert not FunctionTag.objects.exists()
        assert not Resource.objects.filter(account=account).exists()
        assert not OutboxMessage.objects.exists()
        monkeypatch.undo()
        assert not AuditEvent.objects.exists()
        assert post(api, NEW).status_code == 201
