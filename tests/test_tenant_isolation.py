"""Tenant isolation: every /v1 route and method, discovered from the URL configuration.

For each route and method the matrix below says how to call it as account A (the owner). Then:

* another account's token (B, every scope) gets a 404 on A's objects, never sees A's IDs in a list, cannot
  use A's objects by reference in a body, and changes none of A's rows;
* A's own token without the scope the endpoint needs gets ``403 insufficient_scope``;
* no token gets ``401`` with ``WWW-Authenticate: Bearer ...``;
* and, as the control that makes the rest mean something, A's token with every scope succeeds.

A route or method added to the URL configuration without a case here fails ``test_case_exists``; a case whose
route no longer exists fails ``test_no_stale_cases``.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from oauth2_provider.models import AccessToken, RefreshToken

from billing.models import Invoice, InvoiceLine, UsageEvent
from billing.services import invoice_generate_for_month
from elbia.accounts.models import ApiToken
from elbia.config import code_storage
from functions.code import code_store
from functions.models import Function, Invocation
from resources.models import Resource
from tests.factories import FunctionFactory, UsageEventFactory
from tests.functions.code_archives import NODE_CODE, zip_of
from tests.resources.factories import ComputeFactory

ALL_SCOPES = tuple(settings.SCOPES)
ID_PREFIXES = ("RES_", "FUNC_", "INV_", "EXEC_")

# --- Route discovery -------------------------------------------------------------------------------------

_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_PATH_CONVERTER = re.compile(r"<(?:\w+:)?(\w+)>")


def _template(route: str) -> str:
    """``v1/resources/(?P<id>[^/]+)`` or ``v1/billing/invoices/<str:id>`` -> ``v1/resources/{id}``."""
    route = _PATH_CONVERTER.sub(r"{\1}", _REGEX_GROUP.sub(r"{\1}", route))
    return route.replace("^", "").replace("$", "")


def _methods(callback) -> list[str]:
    """The HTTP methods a view answers: a viewset's action map, or an APIView's implemented handlers."""
    actions = getattr(callback, "actions", None)
    if actions:
        return sorted(method.upper() for method in actions)
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is None:
        return ["*"]  # a plain function view: every method
    return sorted(
        method.upper()
        for method in view_class.http_method_names
        if method not in ("options", "head") and hasattr(view_class, method)
    )


def _walk(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern.callback


def discover_v1_routes() -> list[tuple[str, str]]:
    """Every (method, route template) under /v1, from the URL configuration."""
    found = set()
    for route, callback in _walk(get_resolver().url_patterns):
        template = _template(route)
        if template.startswith("v1/"):
            found.update((method, template) for method in _methods(callback))
    return sorted(found, key=lambda pair: (pair[1], pair[0]))


# --- The world: account A's objects, account B ----------------------------------------------------------


@dataclass
class World:
    owner: object  # A's user
    other: object  # B's user
    vpc: Resource
    compute: Resource
    function: Function
    invoice: Invoice
    invocation: Invocation
    a_ids: set[str] = field(default_factory=set)


@pytest.fixture
def world(user, other_user, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES, "code": code_storage(bucket="", directory=tmp_path / "code")}
    account = user.account
    compute = ComputeFactory(account=account)
    sha256, size = code_store(NODE_CODE)
    function = FunctionFactory(
        account=account, created_at=timezone.now().replace(year=2020), code_sha256=sha256, code_size=size
    )
    UsageEventFactory(function=function)  # this month
    invoice = invoice_generate_for_month(account=account, month=date(2024, 3, 1))
    # B has objects of its own too, so B's lists are not trivially empty.
    ComputeFactory(account=other_user.account)
    FunctionFactory(account=other_user.account)
    invoice_generate_for_month(account=other_user.account, month=date(2024, 3, 1))
    invocation = Invocation.objects.create(
        account=account, function=function, invocation_type="Event", status="succeeded", memory_mb=128
    )
    world = World(
        owner=user,
        other=other_user,
        vpc=compute.vpc,
        compute=compute,
        function=function,
        invoice=invoice,
        invocation=invocation,
    )
    world.a_ids = {compute.public_id, compute.vpc.public_id, function.public_id, function.resource.public_id}
    world.a_ids.update((invoice.public_id, invocation.public_id))
    return world


def snapshot(account) -> dict:
    """Every row of A that a /v1 request could change (token use times aside)."""
    return {
        "resources": list(Resource.objects.filter(account=account).order_by("id").values()),
        "functions": list(Function.objects.filter(account=account).order_by("id").values()),
        "invoices": list(Invoice.objects.filter(account=account).order_by("id").values()),
        "invoice_lines": list(InvoiceLine.objects.filter(invoice__account=account).order_by("id").values()),
        "usage_events": list(UsageEvent.objects.filter(account=account).order_by("id").values()),
        "invocations": list(Invocation.objects.filter(account=account).order_by("id").values()),
        "api_tokens": list(
            ApiToken.objects.filter(account=account).order_by("id").values("id", "name", "scopes", "rate_limit")
        ),
        "access_tokens": list(
            AccessToken.objects.filter(user__account=account).order_by("id").values("id", "token_checksum", "scope")
        ),
        "refresh_tokens": list(
            RefreshToken.objects.filter(user__account=account).order_by("id").values("id", "revoked")
        ),
    }


# --- The matrix ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """How to call one route+method as A, and what B must get."""

    scope: str
    owner_status: int
    path: Callable[[World], str] | None = None  # object routes: the path of one of A's objects
    body: Callable[[World], dict | bytes] | None = None  # bytes: sent as they are, with ``content_type``
    content_type: str = "application/json"
    other_body: Callable[[World], dict] | None = None  # B's body, when it differs from A's
    other_status: int | None = None  # None: 404 on object routes; the owner's status on collections
    listed: bool = False  # a list: B's page must not contain A's IDs
    other_check: Callable[[dict | list], bool] | None = None  # what B's body must satisfy otherwise
    headers: dict[str, str] = field(default_factory=dict)  # request headers (Django's HTTP_... names)


def resource_path(w: World) -> str:
    return f"/v1/resources/{w.compute.public_id}"


def invoice_path(w: World) -> str:
    return f"/v1/billing/invoices/{w.invoice.public_id}"


def function_path(w: World) -> str:
    return f"/v1/functions/{w.function.public_id}"


def invocations_path(w: World) -> str:
    return f"/v1/functions/{w.function.public_id}/invocations"


def invocation_path(w: World) -> str:
    return f"{invocations_path(w)}/{w.invocation.public_id}"


def function_body(name: str) -> dict:
    return {"name": name, "runtime": "Node.js 20", "handler": "index.handler"}


def events_body(w: World) -> dict:
    """A usage batch naming A's function: B must not meter A's function."""
    now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"events": [{"event_id": "x-1", "function": w.function.public_id, "timestamp": now, "duration_ms": 5}]}


CASES: dict[tuple[str, str], Case] = {
    ("GET", "v1/regions"): Case("resources:read", 200),
    ("GET", "v1/instance-types"): Case("resources:read", 200),
    ("GET", "v1/resources"): Case("resources:read", 200, listed=True),
    # B naming A's VPC by its ID must not place a server in it.
    ("POST", "v1/resources"): Case(
        "resources:write",
        201,
        body=lambda w: {"region": "us-east-1", "instance_type": "t2.micro", "vpc": w.vpc.public_id},
        other_status=400,
    ),
    ("GET", "v1/resources/{id}"): Case("resources:read", 200, path=resource_path),
    ("PATCH", "v1/resources/{id}"): Case("resources:write", 200, path=resource_path, body=lambda w: {"name": "x"}),
    ("DELETE", "v1/resources/{id}"): Case("resources:write", 202, path=resource_path),
    ("GET", "v1/runtimes"): Case("functions:read", 200),
    ("GET", "v1/functions"): Case("functions:read", 200, listed=True),
    # Names are unique per account: B may use the name of A's function, and learns nothing from it.
    ("POST", "v1/functions"): Case(
        "functions:write",
        201,
        body=lambda w: function_body("fresh-function"),
        other_body=lambda w: function_body(w.function.name),
    ),
    ("GET", "v1/functions/{id}"): Case("functions:read", 200, path=function_path),
    ("PATCH", "v1/functions/{id}"): Case("functions:write", 200, path=function_path, body=lambda w: {"timeout_s": 9}),
    ("DELETE", "v1/functions/{id}"): Case("functions:write", 202, path=function_path),
    ("GET", "v1/functions/{id}/code"): Case("functions:read", 200, path=lambda w: function_path(w) + "/code"),
    ("PUT", "v1/functions/{id}/code"): Case(
        "functions:write",
        200,
        path=lambda w: function_path(w) + "/code",
        body=lambda w: zip_of({"index.js": "exports.handler = async () => 2;\n"}),
        content_type="application/zip",
    ),
    # Queued (202): the owner's control needs no runner; B must not queue a run of A's function.
    ("POST", "v1/functions/{function_id}/invocations"): Case(
        "functions:invoke",
        202,
        path=invocations_path,
        body=lambda w: {"n": 1},
        headers={"HTTP_X_ELBIA_INVOCATION_TYPE": "Event"},
    ),
    ("GET", "v1/functions/{function_id}/invocations"): Case("functions:invoke", 200, path=invocations_path),
    ("GET", "v1/functions/{function_id}/invocations/{id}"): Case("functions:invoke", 200, path=invocation_path),
    ("GET", "v1/usage"): Case("billing:read", 200, other_check=lambda body: body["total_executions"] == 0),
    ("POST", "v1/usage/events"): Case("usage:write", 200, body=events_body, other_status=400),
    ("GET", "v1/billing/invoices"): Case("billing:read", 200, listed=True),
    ("GET", "v1/billing/invoices/{id}"): Case("billing:read", 200, path=invoice_path),
}
# Routes that need no token, and the JSON 404 for unknown paths: not account data.
PUBLIC = {("GET", "v1/openapi.json"), ("*", "v1/.*")}

ROUTES = discover_v1_routes()
CHECKED = [route for route in ROUTES if route not in PUBLIC]


def route_id(route: tuple[str, str]) -> str:
    return f"{route[0]} /{route[1]}"


def case_for(route: tuple[str, str]) -> Case:
    case = CASES.get(route)
    if case is None:
        pytest.fail(f"{route_id(route)} has no tenant-isolation case: add one to CASES in {__name__}.")
    return case


def call(client, method: str, route: str, case: Case, w: World, as_other: bool = False):
    path = case.path(w) if case.path else "/" + route
    assert "{" not in path, f"{route} needs a path builder"
    make_body = (case.other_body if as_other else None) or case.body
    body = make_body(w) if make_body else None
    data = body if isinstance(body, bytes) else "" if body is None else _json(body)
    return client.generic(method, path, data=data, content_type=case.content_type, **case.headers)


def _json(body) -> str:
    import json

    return json.dumps(body)


def error_code(response) -> str:
    return response.json()["error"]["code"]


def ids_in(body) -> set[str]:
    """Every string in a response that looks like a public ID."""
    found = set()
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and value.startswith(ID_PREFIXES):
            found.add(value)
    return found


# --- Tests ---------------------------------------------------------------------------------------------

pytestmark = pytest.mark.django_db


def test_routes_are_discovered():
    """The walk finds the routes it must (a broken walk would make every other test vacuous)."""
    assert ("GET", "v1/resources/{id}") in ROUTES
    assert ("GET", "v1/billing/invoices/{id}") in ROUTES
    assert set(CHECKED) == set(CASES), sorted(set(CHECKED) ^ set(CASES))


@pytest.mark.parametrize("route", ROUTES, ids=route_id)
def test_case_exists(route):
    if route not in PUBLIC:
        case_for(route)


def test_no_stale_cases():
    assert set(CASES) <= set(ROUTES), f"cases for routes that no longer exist: {sorted(set(CASES) - set(ROUTES))}"


@pytest.mark.parametrize("route", CHECKED, ids=route_id)
def test_owner_succeeds(route, world, make_client):
    """The control: A's own token with every scope gets the success status, so the 404s below mean isolation."""
    method, template = route
    case = case_for(route)
    response = call(make_client(world.owner), method, template, case, world)
    assert response.status_code == case.owner_status, response.content


@pytest.mark.parametrize("route", CHECKED, ids=route_id)
def test_other_account_gets_nothing_and_changes_nothing(route, world, make_client):
    method, template = route
    case = case_for(route)
    before = snapshot(world.owner.account)
    response = call(make_client(world.other), method, template, case, world, as_other=True)
    if case.path:
        assert response.status_code == 404, response.content
        assert error_code(response) == "not_found"
        assert response.json()["error"]["message"] == "Resource not available"
    else:
        expected = case.other_status or case.owner_status
        assert response.status_code == expected, response.content
    body = response.json()
    assert not ids_in(body) & world.a_ids, "B's response names A's objects"
    if case.listed:
        assert isinstance(body, list)
        assert body, "B's list should hold B's own objects (else the check proves nothing)"
    if case.other_check:
        assert case.other_check(body), body
    assert snapshot(world.owner.account) == before


@pytest.mark.parametrize("route", CHECKED, ids=route_id)
def test_token_without_the_scope_gets_403(route, world, make_client):
    method, template = route
    case = case_for(route)
    client = make_client(world.owner, scopes=[scope for scope in ALL_SCOPES if scope != case.scope])
    before = snapshot(world.owner.account)
    response = call(client, method, template, case, world)
    assert response.status_code == 403, response.content
    assert error_code(response) == "insufficient_scope"
    assert case.scope in response.json()["error"]["message"]
    assert snapshot(world.owner.account) == before


@pytest.mark.parametrize("route", CHECKED, ids=route_id)
def test_no_token_gets_401(route, world, anonymous_api):
    method, template = route
    case = case_for(route)
    before = snapshot(world.owner.account)
    response = call(anonymous_api, method, template, case, world)
    assert response.status_code == 401, response.content
    assert error_code(response) == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer ")
    assert snapshot(world.owner.account) == before
