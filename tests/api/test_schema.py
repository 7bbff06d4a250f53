"""The OpenAPI document is exact: every operation states the bearer scheme, its errors and the headers it sends."""

import pytest

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
        expected = {"401", "403", "429", "500"} | ({"404"} if "{" in path else set())
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
