"""The contract's error shape, from every layer."""

import json

import pytest
from django.test import Client
from django.urls import path
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from elbia.api.errors import not_found_view, server_error
from elbia.api.exceptions import InvalidParameter
from elbia.errors import Conflict

pytestmark = pytest.mark.django_db


class EchoSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=10)
    count = serializers.IntegerField(min_value=0)


class ProbeView(APIView):
    """A /v1 view that fails in each way a real endpoint can."""

    read_scope = "resources:read"
    write_scope = "resources:write"

    def get(self, request):
        failure = request.query_params.get("fail")
        if failure == "crash":
            raise RuntimeError("secret internals")
        if failure == "parameter":
            raise InvalidParameter("Parameter 'limit' must be an integer from 1 to 200.")
        if failure == "conflict":
            raise Conflict("The VPC is still used by 2 resources.")
        return Response({"ok": True})

    def post(self, request):
        serializer = EchoSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data, status=201)


urlpatterns = [
    path("v1/probe", ProbeView.as_view()),
    path("v1/<path:rest>", not_found_view),
]


def assert_error(response, status: int, code: str, message: str | None = None) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["status"] == status
    assert error["code"] == code
    if message is not None:
        assert error["message"] == message
    assert error["request_id"] == response["X-Request-ID"]
    return error


@pytest.mark.urls(__name__)
class TestErrorShape:
    def test_malformed_json(self, api):
        response = api.post("/v1/probe", data="{not json", content_type="application/json")
        assert_error(response, 400, "invalid_request", "Invalid JSON in request body")

    def test_non_json_content_type(self, api):
        response = api.post("/v1/probe", data="name=x", content_type="application/x-www-form-urlencoded")
        assert_error(response, 400, "invalid_request", "Invalid JSON in request body")

    def test_field_errors_in_details(self, api):
        response = api.post("/v1/probe", data={"name": "much-too-long-name", "count": "x"}, format="json")
        error = assert_error(response, 400, "invalid_request", "Invalid JSON in request body")
        assert set(error["details"]) == {"name", "count"}

    def test_missing_fields(self, api):
        error = assert_error(api.post("/v1/probe", data={}, format="json"), 400, "invalid_request")
        assert error["details"]["name"] == ["This field is required."]

    def test_nan_is_not_json(self, api):
        response = api.post("/v1/probe", data='{"name": "a", "count": NaN}', content_type="application/json")
        assert_error(response, 400, "invalid_request")

    def test_invalid_parameter(self, api):
        error = assert_error(api.get("/v1/probe?fail=parameter"), 400, "invalid_parameter")
        assert "limit" in error["message"]

    def test_401(self, anonymous_api):
        assert_error(anonymous_api.get("/v1/probe"), 401, "unauthorized", "Invalid or missing API token")

    def test_403(self, make_client, user):
        client = make_client(user, scopes=["resources:read"])
        assert_error(client.post("/v1/probe", data={}, format="json"), 403, "insufficient_scope")

    def test_404_unknown_path(self, api):
        assert_error(api.get("/v1/no/such/thing"), 404, "not_found", "Resource not available")

    def test_405(self, api):
        error = assert_error(api.delete("/v1/probe"), 405, "method_not_allowed")
        assert "DELETE" in error["message"]

    def test_409(self, api):
        assert_error(api.get("/v1/probe?fail=conflict"), 409, "conflict", "The VPC is still used by 2 resources.")

    def test_500_hides_internals(self, api):
        response = api.get("/v1/probe?fail=crash")
        assert_error(response, 500, "internal_error", "Internal server error")
        assert b"secret internals" not in response.content

    def test_request_id_is_echoed_when_sane(self, api):
        response = api.get("/v1/probe", HTTP_X_REQUEST_ID="client-abc.123")
        assert response["X-Request-ID"] == "client-abc.123"

    def test_request_id_is_replaced_when_not_sane(self, api):
        response = api.get("/v1/probe", HTTP_X_REQUEST_ID="<script>" + "x" * 300)
        assert response["X-Request-ID"].startswith("req_")

    def test_oversized_body(self, api, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
        body = json.dumps({"name": "a", "count": 1, "padding": "x" * 200})
        assert_error(api.post("/v1/probe", data=body, content_type="application/json"), 413, "payload_too_large")

    @pytest.mark.parametrize(
        "body",
        [
            pytest.param('{"name": ' + "[" * 100_000 + "]" * 100_000 + "}", id="deep-arrays-past-recursion-limit"),
            pytest.param('{"a":' * 50_000 + "1" + "}" * 50_000, id="deep-objects-past-recursion-limit"),
            pytest.param('{"name": ' + "[" * 40 + "]" * 40 + "}", id="deeper-than-32"),
        ],
    )
    def test_deeply_nested_json_is_a_400(self, api, body):
        error = assert_error(api.post("/v1/probe", data=body, content_type="application/json"), 400, "invalid_request")
        assert "nesting deeper than 32" in error["details"]["body"][0]

    def test_nesting_within_the_limit_reaches_the_view(self, api):
        body = '{"name": "a", "count": 1, "x": ' + "[" * 30 + "]" * 30 + "}"
        response = api.post("/v1/probe", data=body, content_type="application/json")
        assert response.status_code == 201

    @pytest.mark.parametrize("number", ["1" + "0" * 5000, "-" + "9" * 101])
    def test_absurdly_long_integers_are_a_plain_400(self, api, number):
        """Python's own refusal (past 4,300 digits) advised calling sys.set_int_max_str_digits()."""
        body = '{"name": "a", "count": ' + number + "}"
        error = assert_error(api.post("/v1/probe", data=body, content_type="application/json"), 400, "invalid_request")
        assert error["details"]["body"] == ["JSON parse error - Integer too long: more than 100 digits"]

    def test_64_bit_integers_parse(self, api):
        body = '{"name": "a", "count": 9223372036854775807}'
        response = api.post("/v1/probe", data=body, content_type="application/json")
        assert response.status_code == 201
        assert response.json()["count"] == 9223372036854775807

    @pytest.mark.parametrize("number", ["1e999", "-1e999", "Infinity", "-Infinity"])
    def test_numbers_overflowing_to_infinity_are_a_400(self, api, number):
        body = '{"name": "a", "count": ' + number + "}"
        assert_error(api.post("/v1/probe", data=body, content_type="application/json"), 400, "invalid_request")


def test_unknown_v1_path_is_json_404(api):
    assert_error(api.get("/v1/definitely-not-here"), 404, "not_found", "Resource not available")


def test_unknown_v1_path_without_token_is_still_json(anonymous_api):
    response = anonymous_api.get("/v1/definitely-not-here")
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_write_to_an_unknown_v1_path_is_a_404_not_a_csrf_refusal(method):
    browser_like = Client(enforce_csrf_checks=True)
    response = getattr(browser_like, method)("/v1/definitely-not-here", data="{}", content_type="application/json")
    assert_error(response, 404, "not_found", "Resource not available")


def test_non_api_404_stays_html(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/v1", "/v1/resources"])
def test_handler500_answers_json_for_the_whole_api_path(rf, path):
    response = server_error(rf.get(path))
    assert response.status_code == 500
    assert json.loads(response.content)["error"]["code"] == "internal_error"


def test_handler500_stays_html_outside_the_api(rf):
    response = server_error(rf.get("/v1x"))
    assert response.status_code == 500
    assert not response["Content-Type"].startswith("application/json")
