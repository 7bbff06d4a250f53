"""The dashboard's function pages: the list, a function's page and its live block, create, edit, deprecate, delete.

View-level (Django's test client): what each page shows (environment variable names, never their values),
that every write goes through the services with their messages next to the fields, is audited and written
once per form, a fixed number of queries whatever the data, and another account's ID is the dashboard's
404 page.
"""

import hashlib
import re
import uuid
from datetime import UTC, datetime

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template.defaultfilters import date as date_filter
from django.test import Client
from django.utils import timezone

from billing.models import Price
from billing.periods import current_month
from elbia.audit.models import AuditEvent
from functions.api.serializers import FunctionSerializer
from functions.code import code_read, code_store
from functions.models import Function, Invocation
from tests.factories import UsageEventFactory
from tests.functions.code_archives import NODE_CODE, zip_of
from tests.functions.conftest import SECRET
from tests.functions.factories import FunctionFactory
from tests.pages import rows
from tests.resources.test_pages import field_errors, post, unescape

pytestmark = pytest.mark.django_db
NEW_CODE = zip_of({"index.mjs": "export const handler = async () => 'v2';\n"})

CREATE = {
    "name": "thumbnailer",
    "runtime": "Python 3.12",
    "handler": "lambda_function.lambda_handler",
    "memory_mb": "256",
    "timeout_s": "10",
    "region": "eu-west-1",
    "tags": "images, edge",
    "environment": f"BUCKET=thumbs\nAPI_KEY={SECRET}",
}


# --- The list -------------------------------------------------------------------------------------------


def test_functions_page_shows_only_the_accounts_functions(signed_in, account, other_user):
    mine = FunctionFactory(account=account, name="user-authentication", tags=["auth"], memory_mb=256)
    theirs = FunctionFactory(account=other_user.account, name="their-function")
    page = signed_in.get("/functions/").content.decode()
    assert mine.public_id in page and "user-authentication" in page and "256MB" in page and "auth" in page
    assert f'href="/functions/{mine.public_id}/">user-authentication</a>' in page
    assert theirs.public_id not in page and "their-function" not in page


def test_functions_page_filters(signed_in, account):
    FunctionFactory(account=account, name="live-one", status="active", region="us-east-1", tags=["auth", "edge"])
    FunctionFactory(account=account, name="old-one", status="deprecated", region="eu-west-1", runtime="Python 3.12")
    FunctionFactory(account=account, name="deleted-one", status="deleted")
    assert rows(signed_in.get("/functions/")) == 2
    deprecated = signed_in.get("/functions/?status=deprecated")
    assert rows(deprecated) == 1 and "old-one" in deprecated.content.decode()
    assert rows(signed_in.get("/functions/?region=us-east-1")) == 1
    assert signed_in.get("/functions/?status=sleeping").status_code == 400
    python = signed_in.get("/functions/?runtime=Python+3.12")
    assert rows(python) == 1 and "old-one" in python.content.decode()
    tagged = signed_in.get("/functions/?tag=edge")
    assert rows(tagged) == 1 and "live-one" in tagged.content.decode()
    assert "No functions match these filters" in signed_in.get("/functions/?tag=nothing-has-this").content.decode()
    assert signed_in.get("/functions/?runtime=Cobol+85").status_code == 400
    assert signed_in.get("/functions/?tag=%3Cscript%3E").status_code == 400


@pytest.mark.parametrize("count", [1, 60])
def test_functions_page_query_count_does_not_grow(signed_in, account, django_assert_num_queries, count):
    FunctionFactory.create_batch(count, account=account)
    with django_assert_num_queries(5):
        response = signed_in.get("/functions/")
    assert rows(response) == min(count, 50)


# --- A function's page ---------------------------------------------------------------------------------


def test_a_function_page_shows_every_field_the_api_shows_but_no_value(signed_in, account):
    function = FunctionFactory(
        account=account,
        name="thumbnailer",
        runtime="Python 3.12",
        handler="app.main",
        memory_mb=512,
        timeout_s=30,
        tags=["images", "edge"],
        environment={"BUCKET": "thumbs", "API_KEY": SECRET},
        last_executed=timezone.now(),
    )
    page = unescape(signed_in.get(f"/functions/{function.public_id}/").content.decode())
    shown = FunctionSerializer.represent(function)
    for field in ("id", "name", "runtime", "handler", "memory", "region", "resource"):
        assert str(shown[field]) in page, field
    assert "Active" in page and "30 s" in page and "python3.12" in page
    for tag in shown["tags"]:
        assert f'<li class="chip">{tag}</li>' in page
    environment = page[page.index('id="environment"') :]
    assert '<li class="chip">API_KEY</li><li class="chip">BUCKET</li>' in environment
    assert SECRET not in page and "thumbs" not in page
    for moment in (function.created_at, function.deployment_started, function.deployed_at, function.last_executed):
        assert f'datetime="{date_filter(moment, "c")}"' in page
    assert f'href="/resources/{function.resource.public_id}/"' in page


def test_a_function_page_shows_its_usage_this_month(signed_in, account, function):
    # priced by the seeded price book: $0.20 per 1M requests, $0.0000166667 per GB-second
    UsageEventFactory.create_batch(3, function=function, duration_ms=2000, memory_mb=1024)
    UsageEventFactory(function=FunctionFactory(account=account))  # another function's
    UsageEventFactory(function=function, timestamp=datetime(2020, 1, 1, tzinfo=UTC))  # another month
    page = signed_in.get(f"/functions/{function.public_id}/").content.decode()
    usage = page[page.index('id="function-usage"') :]
    assert 'data-figure="executions">3<' in usage
    assert 'data-figure="gigabyte_seconds">6<' in usage  # 3 executions of 2 s at 1 GB
    assert 'data-figure="cost">$0.00<' in usage  # well under a cent
    assert f"Usage in {current_month():%B %Y}" in page


def test_usage_without_prices_still_shows_the_figures(signed_in, account, function):
    Price.objects.all().delete()
    UsageEventFactory(function=function)
    page = signed_in.get(f"/functions/{function.public_id}/").content.decode()
    assert 'data-figure="executions">1<' in page
    assert "No price for request applies to" in page


def test_a_deploying_function_updates_itself_until_active(signed_in, account, django_assert_num_queries):
    function = FunctionFactory(account=account, status="deploying", deployed_at=None)
    page = signed_in.get(f"/functions/{function.public_id}/").content.decode()
    assert f'hx-get="/functions/{function.public_id}/lifecycle/"' in page
    Function.objects.filter(pk=function.pk).update(status="active", deployed_at=timezone.now())
    # session, user, account, the function, its audit events
    with django_assert_num_queries(5):
        fragment = signed_in.get(f"/functions/{function.public_id}/lifecycle/").content.decode()
    assert 'data-status="active"' in fragment and "hx-get" not in fragment and "Deployed" in fragment
    assert "<html" not in fragment


@pytest.mark.parametrize("size", [0, 30])
def test_function_pages_query_counts_do_not_grow(signed_in, account, django_assert_num_queries, size):
    function = FunctionFactory(
        account=account,
        tags=[f"tag{n}" for n in range(size)],
        environment={f"VAR_{n}": "x" for n in range(size)},
    )
    UsageEventFactory.create_batch(size, function=function)
    for n in range(size):
        post(
            signed_in,
            f"/functions/{function.public_id}/edit/",
            {"handler": "index.handler", "memory_mb": "128", "timeout_s": "3", "tags": f"tag{n}"},
        )
    Invocation.objects.bulk_create(
        Invocation(
            account=account, function=function, invocation_type="RequestResponse", status="succeeded",
            memory_mb=128, public_id=f"EXEC_{n:010d}", result={"n": n}, log_tail=f"line {n}",
        )
        for n in range(size)
    )  # fmt: skip
    # session, user, account, the function with its resource, its audit events, its last ten invocations,
    # its usage this month, the month's prices
    with django_assert_num_queries(8):
        assert signed_in.get(f"/functions/{function.public_id}/").status_code == 200
    with django_assert_num_queries(9):  # ... and the invocation asked for, when it is not among the ten
        assert signed_in.get(f"/functions/{function.public_id}/?invocation=EXEC_0000000000").status_code == 200
    with django_assert_num_queries(3):
        assert signed_in.get("/functions/new/").status_code == 200
    with django_assert_num_queries(4):  # ... and the function
        assert signed_in.get(f"/functions/{function.public_id}/edit/").status_code == 200
    with django_assert_num_queries(4):
        assert signed_in.get(f"/functions/{function.public_id}/code/").status_code == 200
    with django_assert_num_queries(4):
        assert signed_in.get(f"/functions/{function.public_id}/deprecate/").status_code == 200
    with django_assert_num_queries(4):
        assert signed_in.get(f"/functions/{function.public_id}/delete/").status_code == 200


# --- Creating -------------------------------------------------------------------------------------------


def test_create_a_function(signed_in, account, user):
    form = signed_in.get("/functions/new/").content.decode()
    assert "Node.js 22" in form and "Go 1.x" not in form  # deprecated runtimes cannot be chosen
    response = post(signed_in, "/functions/new/", CREATE)
    function = Function.objects.get(account=account)
    assert response["Location"] == f"/functions/{function.public_id}/"
    assert (function.name, function.runtime, function.handler, function.memory_mb, function.timeout_s) == (
        "thumbnailer",
        "Python 3.12",
        "lambda_function.lambda_handler",
        256,
        10,
    )
    assert function.region == "eu-west-1" and function.tags == ["images", "edge"]
    assert function.environment == {"BUCKET": "thumbs", "API_KEY": SECRET}
    assert function.status == "created" and function.resource.status == "pending"
    event = AuditEvent.objects.get(action="function.create")
    assert (event.object_id, event.actor_user) == (function.public_id, user)
    assert event.changed_fields == sorted(CREATE)
    page = signed_in.get(response["Location"]).content.decode()
    assert SECRET not in page and "hx-get" in page


def test_submitting_a_create_form_twice_creates_once(signed_in, account):
    form_id = uuid.uuid4()
    first = post(signed_in, "/functions/new/", CREATE, form_id=form_id)
    second = post(signed_in, "/functions/new/", CREATE, form_id=form_id)
    assert Function.objects.filter(account=account).count() == 1
    assert second["Location"] == first["Location"]
    assert AuditEvent.objects.filter(action="function.create").count() == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": "Not_A_Name"}, "name", "Function names are 1-64 lowercase letters"),
        ({"handler": "app"}, "handler", "'app' is not a valid handler for Python 3.12: expected file.function"),
        (
            {"runtime": "Go 1.x", "handler": "bootstrap"},
            "runtime",
            "Go 1.x is deprecated: new functions cannot use it.",
        ),
        ({"memory_mb": "64"}, "memory_mb", "Ensure this value is an integer from 128 to 10240 (MB)."),
        ({"memory_mb": "lots"}, "memory_mb", "Enter a whole number."),
        ({"timeout_s": "901"}, "timeout_s", "Ensure this value is an integer from 1 to 900 (seconds)."),
        ({"tags": "has/ok bad!tag"}, "tags", "Tag 'bad!tag' is invalid"),
        ({"environment": f"AWS_REGION={SECRET}"}, "environment", "AWS_REGION is reserved"),
        ({"environment": f"{SECRET}"}, "environment", "Line 1: write each variable as key=value"),
    ],
)
def test_create_shows_the_services_messages_next_to_the_fields(signed_in, account, data, field, message):
    response = post(signed_in, "/functions/new/", {**CREATE, **data})
    assert response.status_code == 400
    assert any(message in unescape(error) for error in field_errors(response, field)), field_errors(response, field)
    assert SECRET not in response.content.decode()  # environment values are never rendered back, but asked for
    assert "The values you typed are never sent back: enter them again." in field_errors(response, "environment")
    assert not Function.objects.filter(account=account).exists()


def test_a_taken_name_is_refused(signed_in, account, function):
    response = post(signed_in, "/functions/new/", {**CREATE, "name": function.name})
    assert response.status_code == 400
    assert (
        "A function named &#x27;user-authentication&#x27; already exists in this account." in response.content.decode()
    )


# --- Changing, deprecating, deleting -------------------------------------------------------------------


def test_edit_a_functions_configuration_and_environment(signed_in, account):
    function = FunctionFactory(account=account, environment={"OLD": "gone-soon", "KEEP": SECRET}, tags=["a"])
    form = signed_in.get(f"/functions/{function.public_id}/edit/").content.decode()
    assert 'value="index.handler"' in form and 'value="OLD"' in form and SECRET not in form
    response = post(
        signed_in,
        f"/functions/{function.public_id}/edit/",
        {
            "handler": "src/app.main",
            "memory_mb": "512",
            "timeout_s": "3",
            "tags": "a, b",
            "environment": "NEW=fresh",
            "remove_environment": ["OLD"],
        },
    )
    assert response["Location"] == f"/functions/{function.public_id}/"
    function.refresh_from_db()
    assert (function.handler, function.memory_mb, function.tags) == ("src/app.main", 512, ["a", "b"])
    assert function.environment == {"KEEP": SECRET, "NEW": "fresh"}
    assert function.status == "deploying" and function.resource.memory_mb == 512
    event = AuditEvent.objects.get(action="function.update")
    assert event.changed_fields == ["environment", "handler", "memory_mb", "tags"]


def test_edit_refusals_show_next_to_the_fields(signed_in, account):
    function = FunctionFactory(account=account, environment={"A": "1"})
    base = {"handler": "index.handler", "memory_mb": "128", "timeout_s": "3", "tags": ""}
    both = post(
        signed_in, f"/functions/{function.public_id}/edit/", {**base, "environment": "A=2", "remove_environment": ["A"]}
    )
    assert field_errors(both, "remove_environment") == ["Set or remove A, not both."]
    bad = post(signed_in, f"/functions/{function.public_id}/edit/", {**base, "handler": "x::y::z"})
    assert "is not a valid handler for Node.js 20" in unescape(field_errors(bad, "handler")[0])
    function.refresh_from_db()
    assert function.environment == {"A": "1"} and function.handler == "index.handler"


def test_a_deploying_function_can_change_its_tags_only(signed_in, account):
    function = FunctionFactory(account=account, status="deploying")
    base = {"handler": "index.handler", "memory_mb": "128", "timeout_s": "3"}
    form = signed_in.get(f"/functions/{function.public_id}/edit/").content.decode()
    assert "its configuration can change once it is active or failed" in form
    refused = post(signed_in, f"/functions/{function.public_id}/edit/", {**base, "memory_mb": "256", "tags": ""})
    assert refused.status_code == 400 and "is still deploying" in refused.content.decode()
    tagged = post(signed_in, f"/functions/{function.public_id}/edit/", {**base, "tags": "urgent"})
    assert tagged.status_code == 302
    function.refresh_from_db()
    assert function.tags == ["urgent"] and function.memory_mb == 128


def test_deprecate_an_active_function(signed_in, account, function):
    confirm = signed_in.get(f"/functions/{function.public_id}/deprecate/").content.decode()
    assert "keeps running, but its configuration can no longer change" in confirm
    post(signed_in, f"/functions/{function.public_id}/deprecate/", {"confirmed": "yes"})
    function.refresh_from_db()
    assert function.status == "deprecated" and function.deprecated_at is not None
    assert AuditEvent.objects.get(action="function.update").changed_fields == ["status"]
    again = post(signed_in, f"/functions/{function.public_id}/deprecate/", {"confirmed": "yes"})
    assert again.status_code == 302  # deprecating twice changes nothing


def test_delete_a_function_with_its_resource(signed_in, account, function):
    confirm = signed_in.get(f"/functions/{function.public_id}/delete/").content.decode()
    assert f'its compute resource <a href="/resources/{function.resource.public_id}/">' in confirm
    response = post(signed_in, f"/functions/{function.public_id}/delete/", {"confirmed": "yes"})
    assert response["Location"] == f"/functions/{function.public_id}/"
    function.refresh_from_db()
    assert function.status == "deleting" and function.resource.status == "deleting"
    assert AuditEvent.objects.get(action="function.delete").object_id == function.public_id


def test_a_deploying_function_cannot_be_deleted_and_the_page_says_why(signed_in, account):
    function = FunctionFactory(account=account, status="deploying")
    confirm = signed_in.get(f"/functions/{function.public_id}/delete/").content.decode()
    assert f"Function {function.public_id} is still deploying; delete it once it is active or failed." in confirm
    assert 'name="confirmed"' not in confirm


def test_retry_a_failed_deployment(signed_in, account):
    function = FunctionFactory(account=account, status="failed", failure_reason="Handler not found.")
    assert "Retry deployment" in signed_in.get(f"/functions/{function.public_id}/").content.decode()
    post(signed_in, f"/functions/{function.public_id}/retry/")
    function.refresh_from_db()
    assert function.status == "deploying"
    assert AuditEvent.objects.get(action="function.retry_deploy").changed_fields == ["status"]


# --- Code ---------------------------------------------------------------------------------------------


@pytest.fixture
def coded(account, code_dir):
    """An active function running ``NODE_CODE``, deployed by AWS Lambda."""
    sha256, size = code_store(NODE_CODE)
    return FunctionFactory(
        account=account,
        code_sha256=sha256,
        code_size=size,
        provider_id="arn:aws:lambda:us-east-1:123456789012:function:elbia-fn",
    )


def upload(client, function, archive: bytes, form_id=None, name: str = "code.zip"):
    upload = SimpleUploadedFile(name, archive, content_type="application/zip")
    return post(client, f"/functions/{function.public_id}/code/", {"code": upload}, form_id=form_id)


def test_a_function_page_shows_its_code_and_provider_id(signed_in, coded):
    page = signed_in.get(f"/functions/{coded.public_id}/").content.decode()
    code = page[page.index('id="function-code"') :]
    assert f'<code data-field="code_sha256">{coded.code_sha256}</code>' in code
    assert f'<span data-field="code_size">{len(NODE_CODE)}\xa0bytes</span>' in code
    link = re.search(r'<a href="(http://testserver/functions/code/[^"]+)" download>', code).group(1)
    assert b"".join(signed_in.get(link.removeprefix("http://testserver")).streaming_content) == NODE_CODE
    assert f"<code>{coded.provider_id}</code>" in page
    assert 'enctype="multipart/form-data"' in code and "Upload a new ZIP" in code


def test_a_large_archive_shows_its_size_rounded_and_exact(signed_in, account):
    large = FunctionFactory(account=account, code_sha256="ab" * 32, code_size=2_500_000)
    code = signed_in.get(f"/functions/{large.public_id}/").content.decode()
    assert '<span data-field="code_size">2.4\xa0MB</span> <span class="muted small">(2500000 bytes)</span>' in code


def test_a_function_without_code_says_so(signed_in, account):
    go = FunctionFactory(account=account, runtime="Go 1.x", handler="bootstrap")
    page = signed_in.get(f"/functions/{go.public_id}/").content.decode()
    assert "No code yet" in page and "/functions/code/" not in page
    assert "<dt>Provider ID</dt><dd>—</dd>" in page


def test_upload_a_new_zip(signed_in, coded, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as queued:
        response = upload(signed_in, coded, NEW_CODE)
    assert response.status_code == 302 and response["Location"] == f"/functions/{coded.public_id}/"
    coded.refresh_from_db()
    assert (coded.code_sha256, coded.code_size) == (hashlib.sha256(NEW_CODE).hexdigest(), len(NEW_CODE))
    assert coded.status == "deploying" and code_read(coded.code_sha256) == NEW_CODE
    assert [callback.task_name for callback in queued] == ["functions.tasks.deploy_function"]
    event = AuditEvent.objects.get(action="function.update")
    assert (event.object_id, event.actor_user, event.changed_fields) == (coded.public_id, user, ["code"])
    page = signed_in.get(response["Location"]).content.decode()
    assert coded.code_sha256 in page and "new code can be uploaded once it is active or failed" in page


def test_submitting_an_upload_twice_writes_once(signed_in, coded, account):
    form_id = uuid.uuid4()
    first = upload(signed_in, coded, NEW_CODE, form_id=form_id)
    second = upload(signed_in, coded, zip_of({"index.js": "exports.handler = async () => 3;"}), form_id=form_id)
    assert second.status_code == 302 and second["Location"] == first["Location"]
    coded.refresh_from_db()
    assert coded.code_sha256 == hashlib.sha256(NEW_CODE).hexdigest()
    assert AuditEvent.objects.filter(action="function.update").count() == 1


@pytest.mark.parametrize(
    ("archive", "message"),
    [
        (b"not a zip at all", "The code is not a ZIP archive (or the archive is damaged)."),
        (
            zip_of({"main.js": "x"}),
            "The archive has no index.js or index.mjs or index.cjs: the handler 'index.handler' of a Node.js 20 "
            "function is there.",
        ),
        (b"", "The chosen file is empty."),
    ],
)
def test_a_refused_archive_is_shown_under_the_field_and_changes_nothing(signed_in, coded, archive, message):
    response = upload(signed_in, coded, archive)
    assert response.status_code == 400
    assert [unescape(error) for error in field_errors(response, "code")] == [message]
    coded.refresh_from_db()
    assert coded.code_size == len(NODE_CODE) and coded.status == "active"
    assert not AuditEvent.objects.exists()
    retry = upload(
        signed_in,
        coded,
        NEW_CODE,
        form_id=re.search(r'name="form_id" value="([^"]+)"', response.content.decode()).group(1),
    )
    assert retry.status_code == 302  # the same form, corrected, goes through


def test_no_file_is_refused(signed_in, coded):
    response = post(signed_in, f"/functions/{coded.public_id}/code/")
    assert field_errors(response, "code") == ["Choose a ZIP archive to upload."]


def test_a_deploying_function_takes_no_code(signed_in, account, code_dir):
    deploying = FunctionFactory(account=account, status="deploying")
    response = upload(signed_in, deploying, NEW_CODE)
    assert response.status_code == 400
    assert "is still deploying; change its code once it is active or failed." in response.content.decode()
    deploying.refresh_from_db()
    assert deploying.code_sha256 is None


# --- Safety: other accounts, CSRF -----------------------------------------------------------------------

OBJECT_ROUTES = [
    ("get", "/functions/{id}/"),
    ("get", "/functions/{id}/lifecycle/"),
    ("get", "/functions/{id}/edit/"),
    ("post", "/functions/{id}/edit/"),
    ("get", "/functions/{id}/code/"),
    ("post", "/functions/{id}/code/"),
    ("get", "/functions/{id}/deprecate/"),
    ("post", "/functions/{id}/deprecate/"),
    ("get", "/functions/{id}/delete/"),
    ("post", "/functions/{id}/delete/"),
    ("post", "/functions/{id}/retry/"),
    ("post", "/functions/{id}/invoke/"),
]


def test_every_object_route_is_checked():
    from functions.urls import urlpatterns

    routes = {f"/functions/{pattern.pattern}".replace("<str:public_id>", "{id}") for pattern in urlpatterns}
    assert {route for route in routes if "{id}" in route} == {route for _, route in OBJECT_ROUTES}


@pytest.mark.parametrize(("method", "route"), OBJECT_ROUTES)
def test_another_accounts_function_is_a_404_page(signed_in, account, others_function, method, route):
    path = route.format(id=others_function.public_id)
    data = {"form_id": str(uuid.uuid4()), "confirmed": "yes", "handler": "x.y", "memory_mb": "256", "timeout_s": "3"}
    response = getattr(signed_in, method)(path, data if method == "post" else None)
    assert response.status_code == 404
    assert "Page not found" in response.content.decode() and 'class="topbar"' in response.content.decode()
    others_function.refresh_from_db()
    assert others_function.status == "active" and others_function.memory_mb == 128
    assert not AuditEvent.objects.exists()


def test_every_form_carries_a_csrf_token_and_a_post_without_one_is_refused(user, account):
    function = FunctionFactory(account=account)
    failed = FunctionFactory(account=account, status="failed")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    for path in (
        "/functions/new/",
        f"/functions/{function.public_id}/edit/",
        f"/functions/{function.public_id}/code/",
        f"/functions/{function.public_id}/",
        f"/functions/{function.public_id}/deprecate/",
        f"/functions/{function.public_id}/delete/",
        f"/functions/{failed.public_id}/",
    ):
        forms = re.findall(r'<form method="post".*?</form>', client.get(path).content.decode(), re.S)
        assert forms and all("csrfmiddlewaretoken" in form for form in forms), path
    refused = client.post(
        f"/functions/{function.public_id}/delete/", {"form_id": str(uuid.uuid4()), "confirmed": "yes"}
    )
    assert refused.status_code == 403
    function.refresh_from_db()
    assert function.status == "active"


# --- The Test panel --------------------------------------------------------------------------------------


def invoke_page(client, function, event: str, **extra):
    return client.post(
        f"/functions/{function.public_id}/invoke/", {"form_id": str(uuid.uuid4()), "event": event}, **extra
    )


@pytest.mark.slow
def test_the_test_panel_invokes_the_function_without_javascript(signed_in, account, runner_port):
    function = _deployed(
        account, "def handler(event, context):\n    print('got', event)\n    return {'twice': event['n'] * 2}\n"
    )
    answer = invoke_page(signed_in, function, '{"n": 21}')
    assert answer.status_code == 302
    invocation = Invocation.objects.get(function=function)
    assert answer["Location"] == f"/functions/{function.public_id}/?invocation={invocation.public_id}#test"
    page = signed_in.get(answer["Location"]).content.decode()
    assert re.search(r'<pre id="invocation-output">\{\s+&quot;twice&quot;: 42\s+\}</pre>', page)
    assert "got {&#x27;n&#x27;: 21}" in page and "billed" in page
    assert invocation.public_id in page.split('id="recent-invocations"')[1]
    # The editor keeps the event sent.
    assert "{&quot;n&quot;: 21}</textarea>" in page


@pytest.mark.slow
def test_the_test_panel_shows_a_raised_error(signed_in, account, runner_port):
    function = _deployed(account, "def handler(event, context):\n    raise KeyError('missing')\n")
    page = signed_in.get(invoke_page(signed_in, function, "{}")["Location"]).content.decode()
    assert '<p class="field-error" id="invocation-error"><strong>KeyError</strong>: &#x27;missing&#x27;</p>' in page
    assert 'id="invocation-trace"' in page


def test_the_test_panel_refuses_what_is_not_json(signed_in, account):
    function = FunctionFactory(account=account)
    answer = invoke_page(signed_in, function, "{oops")
    assert answer.status_code == 400
    assert field_errors(answer, "event")[0].startswith("Not valid JSON: ")
    assert "{oops</textarea>" in answer.content.decode()
    assert not Invocation.objects.exists()
    with_htmx = invoke_page(signed_in, function, "{oops", HTTP_HX_REQUEST="true")
    assert with_htmx.status_code == 200  # htmx swaps only successful answers


def test_the_test_panel_says_when_nothing_can_run_the_function(signed_in, account, settings):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        settings.ELBIA_RUNNER_PORT = taken.getsockname()[1]
    function = FunctionFactory(account=account)
    answer = invoke_page(signed_in, function, "{}")
    assert answer.status_code == 400
    assert "is not reachable" in unescape(answer.content.decode())


def test_only_an_active_function_offers_invoke(signed_in, account):
    function = FunctionFactory(account=account, status="deploying")
    page = signed_in.get(f"/functions/{function.public_id}/").content.decode()
    assert "Only an active function can be invoked; this one is deploying." in page
    assert 'id="invoke-button"' not in page
    assert invoke_page(signed_in, function, "{}").status_code == 400
    assert not Invocation.objects.exists()


def test_another_accounts_invocation_is_not_shown(signed_in, account, other_user):
    function = FunctionFactory(account=account)
    theirs = FunctionFactory(account=other_user.account)
    foreign = Invocation.objects.create(
        account=other_user.account, function=theirs, invocation_type="Event", status="succeeded", memory_mb=128,
        result={"secret": "theirs"},
    )  # fmt: skip
    page = signed_in.get(f"/functions/{function.public_id}/?invocation={foreign.public_id}").content.decode()
    assert "theirs" not in page and foreign.public_id not in page
    assert signed_in.post(f"/functions/{theirs.public_id}/invoke/", {"event": "{}"}).status_code == 404


def _deployed(account, source: str):
    from functions.code import code_store
    from tests.functions.code_archives import zip_of

    sha256, size = code_store(zip_of({"app.py": source}))
    return FunctionFactory(
        account=account, runtime="Python 3.11", handler="app.handler", code_sha256=sha256, code_size=size
    )
