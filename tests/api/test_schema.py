"""The OpenAPI document is exact: every operation states the bearer scheme, its errors and the headers it sends."""

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from functions.models import FunctionStatus
from functions.runtimes import RUNTIMES
from resources.catalog import INSTANCE_TYPES, REGIONS
from tests.factories import FunctionFactory, ResourceFactory

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def document(anonymous_api):
    response = anonymous_api.get("/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def operations(document):
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", method, path, item[method]


def test_bearer_scheme(document):
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An Elbia API token (`elb_...`).",
    }
    for name, _, _, operation in operations(document):
        assert operation["security"] == [{"bearerAuth": []}], name


def test_every_operation_documents_its_errors_and_headers(document):
    error_ref = {"$ref": "#/components/schemas/Error"}
    for name, method, path, operation in operations(document):
        responses = operation["responses"]
        expected = {"401", "403", "406", "429", "500", "503"} | ({"404"} if "{" in path else set())
        if method != "delete":
            expected.add("400")
        if method in ("post", "put", "patch"):
            expected.add("413")
        assert expected <= set(responses), name
        for status, response in responses.items():
            headers = response["headers"]
            assert headers["X-Request-ID"]["required"], (name, status)
            for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
                assert headers[header]["required"] is (status != "500"), (name, status, header)
            if status.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"] == error_ref, (name, status)
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"], name
        assert responses["429"]["headers"]["Retry-After"]["required"], name
        if "201" in responses:
            assert responses["201"]["headers"]["Location"]["required"], name


def test_paginated_lists_document_their_headers(document):
    for path in ("/v1/resources", "/v1/functions", "/v1/billing/invoices"):
        headers = document["paths"][path]["get"]["responses"]["200"]["headers"]
        assert headers["Link"]["required"]
        # Counts only on request (Prefer: count=exact|estimated): documented, never promised.
        for name in ("X-Total-Count", "X-Total-Count-Estimate", "Preference-Applied"):
            assert not headers[name]["required"], (path, name)
        parameters = {parameter["name"] for parameter in document["paths"][path]["get"]["parameters"]}
        assert {"limit", "offset", "cursor", "Prefer"} <= parameters, path


def test_only_paginated_lists_document_pagination_headers(document):
    """A retrieve answers no Link header (the stateful fuzzer found it documented as required there)."""
    for name, method, _, operation in operations(document):
        if method == "get":
            paginated = "limit" in {parameter["name"] for parameter in operation.get("parameters", [])}
            assert ("Link" in operation["responses"]["200"]["headers"]) is paginated, name
    assert "Link" not in document["paths"]["/v1/functions/{id}"]["get"]["responses"]["200"]["headers"]


def test_idempotent_operations_document_the_key_and_the_replay_header(document):
    for path in ("/v1/resources", "/v1/functions"):
        operation = document["paths"][path]["post"]
        assert "Idempotency-Key" in {parameter["name"] for parameter in operation["parameters"]}
        assert "Idempotent-Replayed" in operation["responses"]["201"]["headers"]
        assert {"409", "422"} <= set(operation["responses"])


def test_query_parameters_state_their_choices(document):
    """Choices are enums in the schema, so clients and fuzzers know them (a retrieve has no list parameters)."""
    parameters = {p["name"]: p["schema"] for p in document["paths"]["/v1/resources"]["get"]["parameters"]}
    assert "us-east-1" in parameters["region"]["enum"]
    assert set(parameters["ordering"]["enum"]) == {"created_at", "-created_at"}
    functions = {p["name"]: p["schema"] for p in document["paths"]["/v1/functions"]["get"]["parameters"]}
    assert "Node.js 20" in functions["runtime"]["enum"] and "active" in functions["status"]["enum"]
    assert functions["tag"]["pattern"].startswith("^") and functions["tag"]["pattern"].endswith("$")
    invoice = document["paths"]["/v1/billing/invoices/{id}"]["get"]
    assert {p["name"] for p in invoice.get("parameters", [])} == {"id"}
    month = document["paths"]["/v1/usage"]["get"]["parameters"][0]["schema"]
    assert month["pattern"]


# --- Summaries, servers, a valid document with named components ----------------------------------------------


def test_every_operation_has_a_summary_and_an_operation_id(document):
    ids = []
    for name, _, _, operation in operations(document):
        assert operation.get("summary"), name
        ids.append(operation["operationId"])
    assert len(ids) == len(set(ids))


def test_servers_name_this_deployment(document, settings):
    assert document["servers"] == [
        {"url": settings.ELBIA_PUBLIC_URL.rstrip("/"), "description": "This deployment (ELBIA_PUBLIC_URL)"}
    ]


def test_the_document_validates_and_generates_without_warnings(tmp_path):
    """OpenAPI 3 validation, and no warning (an enum name collision resolved by a hash suffix is one)."""
    from django.core.management import call_command

    target = tmp_path / "openapi.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(target))
    assert target.stat().st_size > 10_000


def walk(node, path=()):
    """Every dict in the document with its path."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def test_components_are_named_so_generated_clients_have_no_anonymous_types(document):
    """A union of inline objects becomes ``ResourceVpcType1`` in generated clients: every object with
    properties, and every object in a union, is a named component."""
    for name in document["components"]["schemas"]:
        assert re.fullmatch(r"[A-Z][A-Za-z]*", name), name  # no numbered or hash-suffixed names
    for path, node in walk(document):
        for union in ("oneOf", "anyOf"):
            for member in node.get(union, ()):
                assert "$ref" in member or member.get("type") not in ("object", None), (path, member)
        if "properties" in node:
            assert path[:2] == ("components", "schemas") and len(path) == 3, path
    resource = document["components"]["schemas"]["Resource"]
    assert {"$ref": "#/components/schemas/Resource"} in resource["properties"]["vpc"]["oneOf"]
    # expand=function adds the function: documented, not promised without it
    assert resource["properties"]["function"]["allOf"] == [{"$ref": "#/components/schemas/Function"}]
    assert "function" not in resource["required"] and "vpc" in resource["required"]


def test_shared_enums_have_one_name(document):
    schemas = document["components"]["schemas"]
    assert schemas["InvoiceStatusEnum"]["enum"] == ["open", "paid", "void"]
    for name in ("Invoice", "InvoiceDetail"):
        assert schemas[name]["properties"]["status"] == {"$ref": "#/components/schemas/InvoiceStatusEnum"}


# --- Error examples: the contract's exact messages ------------------------------------------------------------

# API.md "Errors" and the seed's table, spelled out here so that a changed message fails.
CONTRACT_MESSAGES = {
    "401": ("unauthorized", "Invalid or missing API token"),
    "404": ("not_found", "Resource not available"),
    "406": ("not_acceptable", "Could not satisfy the request Accept header."),
    "429": ("rate_limited", "Rate limit exceeded"),
    "500": ("internal_error", "Internal server error"),
}


def examples(operation, status) -> list[dict]:
    content = operation["responses"][status]["content"]["application/json"]
    return [example["value"]["error"] for example in content.get("examples", {}).values()]


def messages(operation, status) -> list[str]:
    return [error["message"] for error in examples(operation, status)]


def test_every_error_response_shows_exact_examples(document):
    for name, method, _path, operation in operations(document):
        for status, _response in operation["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            shown = examples(operation, status)
            assert shown, (name, status)
            for error in shown:
                assert error["status"] == int(status), (name, status)
                assert error["message"] and error["message"] != "string", (name, status)
                assert error["request_id"].startswith("req_")
        for status, (code, message) in CONTRACT_MESSAGES.items():
            if status in operation["responses"]:
                assert (code, message) in {(e["code"], e["message"]) for e in examples(operation, status)}, name
        if method in ("post", "put", "patch"):
            assert ("invalid_request", "Invalid JSON in request body") in {
                (e["code"], e["message"]) for e in examples(operation, "400")
            }, name


def test_every_operation_documents_503_with_retry_after(document):
    for name, _, _, operation in operations(document):
        response = operation["responses"]["503"]
        assert response["headers"]["Retry-After"]["required"], name
        assert "unavailable" in {error["code"] for error in examples(operation, "503")}, name


def test_the_usage_503_shows_both_its_own_and_the_common_example(document):
    codes = {error["code"] for error in examples(document["paths"]["/v1/usage"]["get"], "503")}
    assert codes == {"pricing_unavailable", "unavailable"}


def test_idempotent_creates_show_the_route_conflict_and_the_idempotency_conflict(document):
    codes = {error["code"] for error in examples(document["paths"]["/v1/functions"]["post"], "409")}
    assert codes == {"conflict", "idempotency_conflict"}


def test_the_examples_are_what_the_api_answers(api, make_client, user, document):
    """The 400 of an unknown parameter, the 406 of an Accept without JSON and the 403 of a missing scope."""
    operation = document["paths"]["/v1/functions"]["get"]
    answer = api.get("/v1/functions", {"limt": 5}).json()["error"]
    assert (answer["code"], answer["message"]) in {(e["code"], e["message"]) for e in examples(operation, "400")}
    answer = api.get("/v1/functions", HTTP_ACCEPT="text/html").json()["error"]
    assert [(answer["code"], answer["message"])] == [(e["code"], e["message"]) for e in examples(operation, "406")]
    reader = make_client(user, scopes=["resources:read"])
    answer = reader.get("/v1/functions").json()["error"]
    shown = examples(operation, "403")
    assert [(answer["code"], answer["message"], answer["details"])] == [
        (e["code"], e["message"], e["details"]) for e in shown
    ]


PUBLIC_ID = re.compile(r"\b(RES|FUNC|INV)_[0-9]{10}\b")


def same_sentence(answered: str, documented: str) -> bool:
    """Equal once the public IDs in both are set aside."""
    return PUBLIC_ID.sub(r"\1_ID", answered) == PUBLIC_ID.sub(r"\1_ID", documented)


class TestConflictsAreDocumentedOnTheirRoutes:
    """Each 409 a route answers is in its responses, with the sentence the service raises as an example."""

    def test_patch_of_a_deprecated_function(self, api, account, document):
        function = FunctionFactory(account=account, status=FunctionStatus.DEPRECATED)
        response = api.patch(f"/v1/functions/{function.public_id}", {"memory_mb": 256}, format="json")
        assert response.status_code == 409
        message = response.json()["error"]["message"]
        assert message == f"Function {function.public_id} is deprecated; its configuration can no longer change."
        documented = messages(document["paths"]["/v1/functions/{id}"]["patch"], "409")
        assert any(same_sentence(message, sentence) for sentence in documented)

    def test_delete_of_a_deleted_function(self, api, account, document):
        function = FunctionFactory(account=account, status=FunctionStatus.DELETED)
        response = api.delete(f"/v1/functions/{function.public_id}")
        assert response.status_code == 409
        message = response.json()["error"]["message"]
        assert message == f"Function {function.public_id} is already deleted."
        documented = messages(document["paths"]["/v1/functions/{id}"]["delete"], "409")
        assert any(same_sentence(message, sentence) for sentence in documented)

    def test_delete_of_a_deleting_resource(self, api, account, document):
        resource = ResourceFactory(account=account, status="deleting")
        response = api.delete(f"/v1/resources/{resource.public_id}")
        assert response.status_code == 409
        documented = messages(document["paths"]["/v1/resources/{id}"]["delete"], "409")
        assert any(same_sentence(response.json()["error"]["message"], sentence) for sentence in documented)


# Conflicts only staff actions raise (the admin's retry buttons): no /v1 route answers them.
STAFF_ONLY_CONFLICTS = {
    "Only failed functions can be retried; {} is {}.",
    "Function {} failed while being deleted (its resource {} is {}); delete it again instead.",
    "Only failed resources can be retried; {} is {}.",
}


APPS = ("elbia", "resources", "functions", "billing")


def conflict_classes(sources: list[str]) -> set[str]:
    """``Conflict`` and the classes that derive from it (``RuntimeNotLocal``), by name."""
    names, classes = {"Conflict"}, []
    for source in sources:
        classes += [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ClassDef)]
    while True:
        found = {node.name for node in classes if any(getattr(base, "id", None) in names for base in node.bases)}
        if found <= names:
            return names
        names |= found


def raised_conflicts(source: str, classes=frozenset({"Conflict"})) -> list[str]:
    """The sentences a conflict is built with in ``source``, each formatted value as ``{}``."""
    sentences = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) in classes and node.args:
            argument = node.args[0]
            if isinstance(argument, ast.Constant):
                sentences.append(argument.value)
            elif isinstance(argument, ast.JoinedStr):
                sentences.append(
                    "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in argument.values)
                )
    return sentences


def sentence_pattern(sentence: str) -> re.Pattern:
    return re.compile(".+?".join(map(re.escape, sentence.split("{}"))))


def documented_conflicts(document) -> list[str]:
    return [
        error["message"]
        for _, _, _, operation in operations(document)
        if "409" in operation["responses"]
        for error in examples(operation, "409")
        if error["code"] == "conflict"
    ]


def test_every_conflict_a_service_raises_is_shown_on_a_route(document):
    """A new ``raise Conflict(...)`` in a service needs its sentence in the 409 of the route that can give it."""
    documented = documented_conflicts(document)
    sentences = [
        sentence
        for services in sorted(Path(django_settings.BASE_DIR).glob("*/services.py"))
        for sentence in raised_conflicts(services.read_text())
    ]
    assert len(sentences) >= 10
    for sentence in sentences:
        if sentence in STAFF_ONLY_CONFLICTS:
            continue
        assert any(sentence_pattern(sentence).fullmatch(message) for message in documented), sentence


def test_every_documented_conflict_is_a_sentence_the_code_raises(document):
    """A 409 example is what a client gets, word for word (IDs and states aside), not a description."""
    sources = [
        path.read_text()
        for app in APPS
        for path in sorted((Path(django_settings.BASE_DIR) / app).rglob("*.py"))
        if "migrations" not in path.parts
    ]
    classes = conflict_classes(sources)
    patterns = [sentence_pattern(sentence) for source in sources for sentence in raised_conflicts(source, classes)]
    documented = documented_conflicts(document)
    assert len(documented) >= 10
    for message in documented:
        assert any(pattern.fullmatch(message) for pattern in patterns), message


# --- What is accepted: fields, ids, closed bodies --------------------------------------------------------------


def test_request_bodies_are_closed(document):
    """Every request body refuses unknown fields (additionalProperties: false), a union in each of its shapes."""
    schemas = document["components"]["schemas"]
    requests = {name: schema for name, schema in schemas.items() if name.endswith("Request")}
    assert {"ResourceCreateRequest", "FunctionCreateRequest", "UsageEventBatchRequest"} <= set(requests)
    for name, schema in requests.items():
        for shape in schema.get("oneOf", [schema]):
            shape = schemas[shape["$ref"].rsplit("/", 1)[1]] if "$ref" in shape else shape
            assert shape["additionalProperties"] is False, name


def test_a_resource_is_created_in_one_of_two_shapes(document):
    """A compute instance (region, instance type, VPC) or a VPC (region, name): a union of named shapes."""
    schemas = document["components"]["schemas"]
    assert schemas["ResourceCreateRequest"] == {
        "oneOf": [
            {"$ref": "#/components/schemas/ComputeCreateRequest"},
            {"$ref": "#/components/schemas/VpcCreateRequest"},
        ]
    }
    assert set(schemas["ComputeCreateRequest"]["required"]) == {"region", "instance_type", "vpc"}
    assert set(schemas["VpcCreateRequest"]["required"]) == {"type", "region", "name"}
    vpc = schemas["ComputeCreateRequest"]["properties"]["vpc"]["anyOf"]
    assert {"type": "string", "enum": ["default"]} in vpc


def test_unknown_body_fields_are_refused_as_the_schema_says(api):
    response = api.post(
        "/v1/functions", {"name": "f", "runtime": "Node.js 20", "handler": "i.h", "x": 1}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"x": ["Unknown field."]}


def test_field_schemas_say_what_is_accepted(document):
    schemas = document["components"]["schemas"]
    create = schemas["FunctionCreateRequest"]["properties"]
    assert set(schemas["RegionEnum"]["enum"]) == set(REGIONS)
    assert create["region"]["allOf"] == [{"$ref": "#/components/schemas/RegionEnum"}]
    assert {"Node.js 20", "nodejs20.x", "Python 3.13"} <= set(schemas["RuntimeEnum"]["enum"])
    assert "Node.js 18" not in schemas["RuntimeEnum"]["enum"]  # deprecated: no new function
    assert (create["memory_mb"]["minimum"], create["memory_mb"]["maximum"]) == (128, 10240)
    assert (create["timeout_s"]["minimum"], create["timeout_s"]["maximum"]) == (1, 900)
    handler = re.compile(create["handler"]["pattern"])
    for runtime in RUNTIMES.values():
        assert handler.fullmatch(runtime.handler_example), runtime.name
    assert not handler.fullmatch("index handler")
    assert re.fullmatch(create["name"]["pattern"], "user-authentication")
    assert not re.fullmatch(create["name"]["pattern"], "User_Auth")
    assert create["tags"]["maxItems"] == 50 and create["tags"]["uniqueItems"]
    assert create["environment"]["additionalProperties"] == {"type": "string"}
    patch = schemas["PatchedFunctionUpdateRequest"]["properties"]
    assert patch["environment"]["additionalProperties"] == {"type": "string", "nullable": True}
    assert schemas[patch["status"]["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"] == ["deprecated"]
    resource = schemas["ComputeCreateRequest"]["properties"]
    assert set(schemas["InstanceTypeEnum"]["enum"]) == set(INSTANCE_TYPES)
    assert resource["tags"]["additionalProperties"] == {"type": "string", "maxLength": 256}
    assert schemas["Resource"]["properties"]["tags"]["type"] == "object"


def test_object_ids_state_their_shape(document):
    for path, prefix in (
        ("/v1/resources/{id}", "RES_"),
        ("/v1/functions/{id}", "FUNC_"),
        ("/v1/billing/invoices/{id}", "INV_"),
    ):
        for method, operation in document["paths"][path].items():
            if method in METHODS:
                (parameter,) = [p for p in operation["parameters"] if p["in"] == "path"]
                assert parameter["schema"]["pattern"] == rf"^{prefix}[0-9]{{10}}$", (path, method)


# --- Links: from each create to what acts on the created object ----------------------------------------------


def test_creates_link_to_every_operation_on_the_created_object(document):
    """The stateful fuzzer (test_schema_fuzzing.py) follows these; so can clients."""
    by_id = {operation["operationId"]: (method, path) for _, method, path, operation in operations(document)}
    creatable = [path for path, item in document["paths"].items() if "201" in item.get("post", {}).get("responses", {})]
    assert {"/v1/resources", "/v1/functions"} <= set(creatable)
    for collection in creatable:
        links = document["paths"][collection]["post"]["responses"]["201"]["links"]
        targets = {}  # operationId -> the path parameter naming the created object
        for path, item in document["paths"].items():
            member = re.fullmatch(re.escape(collection) + r"/\{(\w+)\}(/[^{}]*)?", path)
            for method, operation in item.items():
                if member and method in METHODS:
                    targets[operation["operationId"]] = member[1]
        assert set(links) == set(targets) and targets, collection
        for operation_id, link in links.items():
            assert link["operationId"] == operation_id and operation_id in by_id
            assert link["parameters"] == {f"path.{targets[operation_id]}": "$response.body#/id"}
    expected = {"functions_retrieve", "functions_partial_update", "functions_destroy"}
    assert expected <= set(document["paths"]["/v1/functions"]["post"]["responses"]["201"]["links"])
