"""/v1/functions/{id}/code and ``code`` on create: upload a ZIP (PUT), a signed download link (GET), every error."""

import base64
import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from elbia.audit.models import AuditEvent
from functions.code import MAX_ZIPPED_BYTES, code_read, code_store
from functions.models import Function, FunctionStatus
from functions.starters import starter_archive
from tests.functions.code_archives import NODE_CODE, PYTHON_CODE, zip_of
from tests.functions.factories import FunctionFactory
from tests.resources.conftest import error_of

pytestmark = pytest.mark.django_db

ZIP = "application/zip"
NEW_CODE = zip_of({"index.mjs": "export const handler = async () => 'v2';\n"})
HOST = "http://testserver"


def code_path(function) -> str:
    return f"/v1/functions/{function.public_id}/code"


def put_code(api, function, data: bytes = NEW_CODE, content_type: str = ZIP):
    return api.put(code_path(function), data=data, content_type=content_type)


def code_problems(response) -> list[str]:
    error = error_of(response, 400, "invalid_request", "Invalid JSON in request body")
    return error["details"]["code"]


@pytest.fixture
def function(account, code_dir):
    """An active Node.js function running ``NODE_CODE``, deployed an hour ago."""
    sha256, size = code_store(NODE_CODE)
    return FunctionFactory(
        account=account,
        code_sha256=sha256,
        code_size=size,
        deployment_started=timezone.now() - timedelta(hours=1),
        deployed_at=timezone.now() - timedelta(hours=1),
    )


class TestAccess:
    @pytest.mark.parametrize("method", ["get", "put"])
    def test_no_token_is_401(self, anonymous_api, function, method):
        response = anonymous_api.generic(method.upper(), code_path(function), NEW_CODE, content_type=ZIP)
        error_of(response, 401, "unauthorized", "Invalid or missing API token")
        assert response["WWW-Authenticate"].startswith("Bearer ")

    def test_uploading_needs_the_write_scope(self, make_client, user, function):
        reader = make_client(user, scopes=["functions:read", "resources:write"])
        error = error_of(put_code(reader, function), 403, "insufficient_scope")
        assert "functions:write" in error["message"]
        function.refresh_from_db()
        assert function.code_size == len(NODE_CODE) and function.status == FunctionStatus.ACTIVE

    def test_the_link_needs_the_read_scope(self, make_client, user, function):
        writer = make_client(user, scopes=["functions:write"])
        assert "functions:read" in error_of(writer.get(code_path(function)), 403, "insufficient_scope")["message"]

    def test_another_accounts_function_is_404(self, other_api, function):
        unknown = other_api.get("/v1/functions/FUNC_0000000000/code")
        for response in (other_api.get(code_path(function)), put_code(other_api, function), unknown):
            error_of(response, 404, "not_found", "Resource not available")
        function.refresh_from_db()
        assert function.code_size == len(NODE_CODE)

    @pytest.mark.parametrize("bad_id", ["nope", "FUNC_12", "RES_0000000001"])
    def test_malformed_ids_are_404(self, api, bad_id, code_dir):
        error_of(api.put(f"/v1/functions/{bad_id}/code", data=NEW_CODE, content_type=ZIP), 404, "not_found")
        error_of(api.get(f"/v1/functions/{bad_id}/code"), 404, "not_found")


class TestUpload:
    def test_new_code_is_stored_and_redeploys(self, api, function, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks() as queued:
            response = put_code(api, function)
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["id"] == function.public_id and body["status"] == "deploying"
        assert body["code_sha256"] == hashlib.sha256(NEW_CODE).hexdigest() != function.code_sha256
        assert body["code_size"] == len(NEW_CODE)
        assert body["deployment_started"] > function.deployment_started.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert [callback.task_name for callback in queued] == ["functions.tasks.deploy_function"]
        assert code_read(body["code_sha256"]) == NEW_CODE
        assert api.get(f"/v1/functions/{function.public_id}").json()["code_sha256"] == body["code_sha256"]

    def test_audited_as_a_code_update(self, api, function, user):
        put_code(api, function)
        event = AuditEvent.objects.get(action="function.update")
        assert (event.object_id, event.actor_user, event.changed_fields) == (function.public_id, user, ["code"])

    def test_the_same_code_again_changes_nothing(self, api, function, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks() as queued:
            response = put_code(api, function, NODE_CODE)
        assert response.status_code == 200
        assert response.json()["status"] == "active" and response.json()["code_sha256"] == function.code_sha256
        assert queued == []

    def test_a_charset_parameter_is_fine(self, api, function):
        assert put_code(api, function, content_type="Application/ZIP; charset=binary").status_code == 200

    def test_a_failed_function_can_get_fixed_code(self, api, account, code_dir):
        failed = FunctionFactory(account=account, status=FunctionStatus.FAILED, failure_reason="Handler crashed.")
        body = put_code(api, failed).json()
        assert body["status"] == "deploying" and body["failure_reason"] is None

    def test_a_function_without_code_gets_its_first(self, api, account, code_dir):
        dotnet = FunctionFactory(account=account, runtime=".NET 8", handler="App::App.Function::Handler")
        archive = zip_of({"App.dll": b"MZ not really"})
        body = put_code(api, dotnet, archive).json()
        assert (body["code_sha256"], body["code_size"]) == (hashlib.sha256(archive).hexdigest(), len(archive))

    def test_constant_queries(self, api, function, django_assert_num_queries):
        api.get(f"/v1/functions/{function.public_id}")  # the token is cached from here on
        # the function; it again, locked, with its resource; the update and the outbox row (in a savepoint);
        # the audit event (in a savepoint)
        with django_assert_num_queries(9):
            assert put_code(api, function).status_code == 200


class TestRefusals:
    @pytest.mark.parametrize(
        ("archive", "fragment"),
        [
            (b"", "The code is empty: send a ZIP archive."),
            (b"PK\x03\x04 not really a zip", "The code is not a ZIP archive (or the archive is damaged)."),
            (zip_of({"../escape.js": "x", "index.js": "x"}), "Entries must be relative paths inside the archive"),
            (zip_of({"main.js": "x"}), "The archive has no index.js or index.mjs or index.cjs"),
        ],
    )
    def test_a_bad_archive_is_a_400_and_touches_nothing(
        self, api, function, archive, fragment, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks() as queued:
            response = put_code(api, function, archive)
        assert any(fragment in problem for problem in code_problems(response)), response.json()
        assert queued == []
        function.refresh_from_db()
        assert (function.code_sha256, function.status) == (hashlib.sha256(NODE_CODE).hexdigest(), "active")
        assert not AuditEvent.objects.exists()

    @pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=x", "text/plain"])
    def test_another_content_type_is_415(self, api, function, content_type):
        body = json.dumps({"code": base64.b64encode(NEW_CODE).decode()}).encode()
        error = error_of(put_code(api, function, body, content_type), 415, "unsupported_media_type")
        assert error["message"] == (
            f"Send the ZIP archive as the body with Content-Type: application/zip (got {content_type.split(';')[0]})."
        )
        function.refresh_from_db()
        assert function.code_size == len(NODE_CODE)

    def test_no_content_type_is_415(self, api, function):
        response = api.generic("PUT", code_path(function), NEW_CODE, content_type="")
        assert "(got none)" in error_of(response, 415, "unsupported_media_type")["message"]

    def test_more_than_50_mb_is_413(self, api, function):
        response = put_code(api, function, b"\0" * (MAX_ZIPPED_BYTES + 1))
        error = error_of(response, 413, "payload_too_large")
        assert error["message"] == "Request body is too large: at most 52,428,800 bytes are accepted here."
        function.refresh_from_db()
        assert function.code_size == len(NODE_CODE)

    def test_exactly_50_mb_reaches_the_archive_checks(self, api, function):
        problems = code_problems(put_code(api, function, b"\0" * MAX_ZIPPED_BYTES))
        assert problems == ["The code is not a ZIP archive (or the archive is damaged)."]

    @pytest.mark.parametrize(
        ("status", "message"),
        [
            ("deploying", "is still deploying; change its code once it is active or failed."),
            ("created", "is still created; change its code once it is active or failed."),
            ("deprecated", "is deprecated; its code can no longer change."),
            ("deleting", "is deleting."),
            ("deleted", "is deleted."),
        ],
    )
    def test_only_an_active_or_failed_function_takes_code(self, api, account, code_dir, status, message):
        busy = FunctionFactory(account=account, status=status)
        error = error_of(put_code(api, busy), 409, "conflict")
        assert error["message"] == f"Function {busy.public_id} {message}"
        busy.refresh_from_db()
        assert busy.code_sha256 is None and busy.status == status

    def test_a_query_parameter_is_400(self, api, function):
        response = api.put(code_path(function) + "?force=1", data=NEW_CODE, content_type=ZIP)
        assert "'force'" in error_of(response, 400, "invalid_parameter")["message"]

    def test_post_and_patch_are_405(self, api, function):
        error_of(api.post(code_path(function), data=NEW_CODE, content_type=ZIP), 405, "method_not_allowed")
        error_of(api.patch(code_path(function), data=NEW_CODE, content_type=ZIP), 405, "method_not_allowed")


class TestDownloadLink:
    def test_the_link_downloads_the_code_without_a_token(self, api, function, client):
        before = timezone.now()
        response = api.get(code_path(function))
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"url", "expires_at", "code_sha256", "code_size"}
        assert (body["code_sha256"], body["code_size"]) == (function.code_sha256, len(NODE_CODE))
        assert body["url"].startswith(f"{HOST}/functions/code/")
        lifetime = (timezone.datetime.fromisoformat(body["expires_at"]) - before).total_seconds()
        assert 299 <= lifetime <= 301  # ELBIA_CODE_LINK_SECONDS
        download = client.get(body["url"].removeprefix(HOST))  # a browser: no bearer token
        assert download.status_code == 200
        assert download["Content-Type"] == "application/zip"
        assert b"".join(download.streaming_content) == NODE_CODE

    def test_the_link_keeps_the_code_it_was_made_for(self, api, function, client):
        url = api.get(code_path(function)).json()["url"]
        put_code(api, function)
        assert b"".join(client.get(url.removeprefix(HOST)).streaming_content) == NODE_CODE
        newer = api.get(code_path(function)).json()
        assert b"".join(client.get(newer["url"].removeprefix(HOST)).streaming_content) == NEW_CODE

    def test_an_expired_link_is_410(self, api, function, client, settings):
        url = api.get(code_path(function)).json()["url"]
        settings.ELBIA_CODE_LINK_SECONDS = -1
        response = client.get(url.removeprefix(HOST))
        assert response.status_code == 410 and b"expired" in response.content

    def test_a_tampered_link_is_404(self, api, function, client, other_user):
        url = api.get(code_path(function)).json()["url"].removeprefix(HOST)
        assert client.get(url[:-3] + "abc").status_code == 404
        others = FunctionFactory(account=other_user.account, code_sha256=function.code_sha256, code_size=1)
        forged = url.replace(function.public_id, others.public_id)  # the signature covers the function's id
        assert client.get(forged).status_code == 404

    def test_a_function_without_code_is_409(self, api, account):
        go = FunctionFactory(account=account, runtime="Go 1.x", handler="bootstrap")
        error = error_of(api.get(code_path(go)), 409, "conflict")
        assert error["message"] == (
            f"Function {go.public_id} has no code yet: upload a ZIP archive with PUT /v1/functions/{go.public_id}/code."
        )

    def test_a_deleted_function_is_409(self, api, function):
        Function.objects.filter(pk=function.pk).update(status=FunctionStatus.DELETED)
        error = error_of(api.get(code_path(function)), 409, "conflict")
        assert error["message"] == f"Function {function.public_id} is deleted; its code can no longer be downloaded."

    def test_one_query_after_authentication(self, api, function, django_assert_num_queries):
        api.get(code_path(function))
        with django_assert_num_queries(1):  # the token is cached; the function
            assert api.get(code_path(function)).status_code == 200


class TestCreateWithCode:
    def test_code_in_base64_is_used(self, api, code_dir):
        body = {"name": "hello", "runtime": "Python 3.12", "handler": "app.handler"}
        response = api.post("/v1/functions", {**body, "code": base64.b64encode(PYTHON_CODE).decode()}, format="json")
        assert response.status_code == 201, response.content
        created = response.json()
        assert (created["code_sha256"], created["code_size"]) == (
            hashlib.sha256(PYTHON_CODE).hexdigest(),
            len(PYTHON_CODE),
        )
        assert code_read(created["code_sha256"]) == PYTHON_CODE

    def test_without_code_the_starter_is_used(self, api, code_dir):
        body = {"name": "hello", "runtime": "Python 3.12", "handler": "app.handler"}
        created = api.post("/v1/functions", body, format="json").json()
        starter = starter_archive("Python 3.12", "app.handler")
        assert (created["code_sha256"], created["code_size"]) == (hashlib.sha256(starter).hexdigest(), len(starter))

    @pytest.mark.parametrize(
        ("code", "message"),
        [
            ("not base64!", "The code is not valid base64 (standard alphabet, with padding)."),
            (12, "The code must be a base64 string of a ZIP archive."),
            (base64.b64encode(b"plain text").decode(), "The code is not a ZIP archive (or the archive is damaged)."),
            (
                base64.b64encode(NODE_CODE).decode(),
                "The archive has no app.py or app/__init__.py: the handler 'app.handler' of a Python 3.12 function "
                "is there.",
            ),
        ],
    )
    def test_bad_code_is_a_400_under_code(self, api, code_dir, code, message):
        body = {"name": "hello", "runtime": "Python 3.12", "handler": "app.handler", "code": code}
        problems = code_problems(api.post("/v1/functions", body, format="json"))
        assert problems == [message]
        assert not Function.objects.exists()
