"""``elbia`` against the real application: pytest-django's live server, a real Celery worker, no mocks.

Each test signs in with a token issued by ``token_issue`` and runs the client in a subprocess.
"""

import hashlib
import json
import stat
import time
import zipfile
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.urls import resolve
from django.utils import timezone
from elbia_cli.archive import build_archive, sha256
from oauth2_provider.models import AccessToken, RefreshToken
from pypdf import PdfReader

from billing.demo import seed_billing_demo
from elbia.accounts.services import token_issue
from elbia.accounts.token_cache import forget_token
from elbia.api.errors import not_found_view
from resources.models import Resource, ResourceStatus
from tests.factories import UserFactory
from tests.resources.factories import ComputeFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RENEWED = "/oauth/token/ -> 200"
TIMEOUT = 60


def route_exists(path: str) -> bool:
    return resolve(path).func is not not_found_view


needs_code = pytest.mark.skipif(
    not route_exists("/v1/functions/FUNC_0000000000/code"), reason="the function code endpoints are not in this build"
)
needs_code_and_invocations = pytest.mark.skipif(
    not (
        route_exists("/v1/functions/FUNC_0000000000/code") and route_exists("/v1/functions/FUNC_0000000000/invocations")
    ),
    reason="the function code and invocation endpoints are not in this build yet",
)


def expire_access_tokens(user) -> None:
    """Make the user's access tokens expired, as 30 days would (the config still believes they are fresh).

    Written behind the application's back, so the server's cache of validated tokens is told as well
    (a real expiry needs nothing: a cached token is trusted no later than its expiry).
    """
    tokens = AccessToken.objects.filter(user=user)
    checksums = list(tokens.values_list("token_checksum", flat=True))
    tokens.update(expires=timezone.now() - timedelta(minutes=1))
    for token_checksum in checksums:  # after the change: a request meanwhile cannot cache the token as it was
        forget_token(token_checksum)


def checksum(token: str) -> str:
    """How the server finds a token: by the SHA-256 of its value (it keeps no token in clear)."""
    return hashlib.sha256(token.encode()).hexdigest()


def live_refresh_tokens(user) -> list[RefreshToken]:
    return list(RefreshToken.objects.filter(user=user, revoked__isnull=True))


def api_get(signed_in, elbia, path: str) -> dict:
    """The same request straight to the API with the stored token (to compare the client's JSON with)."""
    token = elbia.context()["access_token"]
    return httpx.get(signed_in.server + path, headers={"Authorization": f"Bearer {token}"}).json()


class TestSignIn:
    def test_login_checks_the_token_and_stores_it_for_the_user_alone(self, server, elbia):
        refused = elbia.run("auth", "login", "--server", server, "--token-stdin", input="elb_at_wrong elb_rt_wrong")
        assert refused.returncode == 3
        assert "refused" in refused.stderr
        assert not elbia.config_path.exists()

        user = UserFactory()
        issued = token_issue(user=user, scopes=["resources:read", "billing:read"])
        elbia.login(server, issued)
        assert stat.S_IMODE(elbia.config_path.stat().st_mode) == 0o600
        assert stat.S_IMODE(elbia.config_path.parent.stat().st_mode) == 0o700
        stored = elbia.context()
        assert (stored["access_token"], stored["refresh_token"]) == (issued.access_token, issued.refresh_token)

        status = elbia.json("auth", "status")
        assert status["server"] == server
        assert status["scopes"] == ["resources:read", "billing:read"]
        assert status["expires_at"] == issued.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert issued.access_token not in json.dumps(status)  # shown masked, never whole

    def test_pasted_tokens_and_contexts_for_two_accounts(self, server, elbia):
        alice, bob = UserFactory(), UserFactory()
        alices = ComputeFactory(account=alice.account, name="alices")
        bobs = ComputeFactory(account=bob.account, name="bobs")
        for name, user in (("alice", alice), ("bob", bob)):
            issued = token_issue(user=user, scopes=["resources:read"])
            pasted = f"{issued.access_token}\n{issued.refresh_token}\n"  # as `make run` prints them
            elbia.ok("auth", "login", "--server", server, "--name", name, "--token-stdin", input=pasted)

        assert [item["context"] for item in elbia.json("auth", "list") if item["current"]] == ["bob"]
        assert alices.public_id not in {item["id"] for item in elbia.json("resources", "list")}
        assert bobs.public_id in {item["id"] for item in elbia.json("resources", "list")}
        assert alices.public_id in {item["id"] for item in elbia.json("--context", "alice", "resources", "list")}

        elbia.ok("auth", "switch", "alice")
        assert alices.public_id in {item["id"] for item in elbia.json("resources", "list")}
        assert elbia.run("auth", "switch", "carol").returncode == 2

    def test_renew_shows_what_the_server_gave_and_logout_revokes_the_token(self, signed_in, elbia):
        before = elbia.context()
        renewed = elbia.json("auth", "renew")
        assert renewed["scopes"] == list(settings.SCOPES)
        assert renewed["expires_at"] and renewed["renewed_at"]
        after = elbia.context()
        assert after["access_token"] != before["access_token"]
        assert after["refresh_token"] != before["refresh_token"]

        elbia.ok("auth", "logout")
        assert elbia.config["contexts"] == {}
        assert live_refresh_tokens(signed_in.user) == []
        assert elbia.run("resources", "list").returncode == 3


class TestResources:
    def test_create_wait_get_expand_rename_tag_delete(self, signed_in, elbia, celery_worker):
        created = elbia.json(
            "resources", "create", "--region", "eu-west-1", "--instance-type", "t3.micro", "--tag", "team=web", "--wait"
        )
        assert created["status"] == "active" and created["provisioned_at"]
        assert created["vpc"].startswith("RES_")

        expanded = elbia.json("resources", "get", created["id"], "--expand", "vpc")
        assert expanded["vpc"]["id"] == created["vpc"]
        assert expanded["vpc"]["name"] == "default" and expanded["vpc"]["status"] == "active"

        assert elbia.json("resources", "rename", created["id"], "web-eu")["name"] == "web-eu"
        assert elbia.json("resources", "tag", created["id"], "env=prod")["tags"] == {"team": "web", "env": "prod"}
        assert elbia.json("resources", "tag", created["id"], "--remove", "team")["tags"] == {"env": "prod"}

        deleted = elbia.json("resources", "delete", created["id"], "--wait")
        assert deleted["status"] == "deleted"
        assert Resource.objects.get(public_id=created["id"]).status == ResourceStatus.DELETED

    def test_a_failed_resource_exits_1_with_its_reason(self, signed_in, elbia, celery_worker):
        result = elbia.run(
            "resources",
            "create",
            "--region",
            "us-east-1",
            "--instance-type",
            "t2.micro",
            "--tag",
            "simulate=fail",
            "--wait",
        )
        assert result.returncode == 1
        assert "Simulated provisioning failure" in result.stderr
        assert "failed" in result.stdout

    def test_list_all_follows_the_next_links_through_every_page(self, signed_in, elbia):
        for n in range(4):
            ComputeFactory(account=signed_in.account, tags={"env": "prod" if n % 2 else "dev"})
        expected = set(Resource.objects.for_account(signed_in.account).values_list("public_id", flat=True))
        assert len(expected) == 8  # four instances, each with its VPC

        result = elbia.ok("--debug", "resources", "list", "--all", "--limit", "3", "--output", "json")
        listed = [item["id"] for item in json.loads(result.stdout)]
        assert sorted(listed) == sorted(expected)
        assert result.stderr.count("GET http") == 3  # pages of 3, 3 and 2

        first_page = elbia.ok("resources", "list", "--limit", "3")
        assert len(first_page.stdout.strip().splitlines()) == 2 + 3  # header, rule, three rows
        assert "--all" in first_page.stderr

        prod = elbia.json("resources", "list", "--all", "--filter", '{"tags.env": "prod"}')
        assert len(prod) == 2
        assert elbia.ok("resources", "list", "--all", "--quiet", "--type", "vpc").stdout.count("RES_") == 4

    def test_errors_show_the_api_message_and_request_id_with_their_exit_code(self, signed_in, elbia):
        missing = elbia.run("resources", "get", "RES_0000000000")
        assert missing.returncode == 4
        assert "Resource not available (request req_" in missing.stderr

        as_json = elbia.run("resources", "get", "RES_0000000000", "--output", "json")
        assert json.loads(as_json.stderr)["error"]["code"] == "not_found"
        assert as_json.stdout == ""

        bad_filter = elbia.run("resources", "list", "--filter", '{"colour": "red"}')
        assert bad_filter.returncode == 2
        assert "colour" in bad_filter.stderr

        invalid = elbia.run("resources", "create", "--region", "mars-1", "--instance-type", "t2.micro")
        assert invalid.returncode == 2
        assert "region:" in invalid.stderr

        narrow = token_issue(user=signed_in.user, scopes=["billing:read"])
        elbia.login(signed_in.server, narrow, name="billing-only")
        refused = elbia.run("resources", "list")
        assert refused.returncode == 3
        assert "resources:read" in refused.stderr


@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # keeps the price book the migrations seed
class TestBilling:
    def test_usage_invoices_and_a_real_pdf(self, signed_in, elbia):
        invoice = seed_billing_demo(account=signed_in.account)
        table = elbia.ok("usage").stdout
        api = api_get(signed_in, elbia, "/v1/usage")
        assert api["total_executions"] > 0
        for text in (api["period"], str(api["total_executions"]), api["current_month_cost"], "Function requests"):
            assert text in table
        assert elbia.json("usage") == api  # the API's object, unchanged

        listed = elbia.json("invoices", "list")
        assert [item["id"] for item in listed] == [invoice.public_id]
        assert invoice.public_id in elbia.ok("invoices", "list").stdout

        saved = elbia.ok("invoices", "download", invoice.public_id)
        path = elbia.home / f"{invoice.public_id}.pdf"
        assert str(path.name) in saved.stdout
        text = "\n".join(page.extract_text() for page in PdfReader(BytesIO(path.read_bytes())).pages)
        assert invoice.public_id in text

        elbia.ok("invoices", "download", invoice.public_id, "--file", "copy.pdf")
        assert (elbia.home / "copy.pdf").read_bytes() == path.read_bytes()
        assert elbia.run("invoices", "download", "INV_0000000000").returncode == 4


class TestTokenRenewal:
    def test_a_token_expiring_in_the_middle_of_a_command_is_renewed_and_the_command_goes_on(
        self, signed_in, elbia, celery_worker, settings
    ):
        settings.ELBIA_PROVISION_DELAY = 1  # each lifecycle step takes a second: time to expire the token meanwhile
        command = elbia.start(
            "--debug",
            "resources",
            "create",
            "--region",
            "us-east-1",
            "--instance-type",
            "t2.micro",
            "--wait",
            "-o",
            "json",
        )
        deadline = time.monotonic() + TIMEOUT
        while not Resource.objects.for_account(signed_in.account).filter(type="compute").exists():
            assert time.monotonic() < deadline and command.poll() is None, command.communicate()
            time.sleep(0.05)
        expire_access_tokens(signed_in.user)  # the command is now polling the new resource's status

        out, err = command.communicate(timeout=TIMEOUT)
        assert command.returncode == 0, err
        assert json.loads(out)["status"] == "active"
        assert err.count(RENEWED) == 1
        assert err.index("-> 401") < err.index(RENEWED)  # refused as expired, renewed, retried
        stored = elbia.context()
        assert stored["access_token"] != signed_in.issued.access_token
        assert [token.token_checksum for token in live_refresh_tokens(signed_in.user)] == [
            checksum(stored["refresh_token"])
        ]

    def test_two_commands_renewing_at_once_leave_one_valid_pair(self, signed_in, elbia):
        ComputeFactory(account=signed_in.account)
        expire_access_tokens(signed_in.user)
        commands = [elbia.start("--debug", "resources", "list", "-o", "json") for _ in range(2)]
        outcomes = [command.communicate(timeout=TIMEOUT) for command in commands]
        assert [command.returncode for command in commands] == [0, 0], outcomes
        assert all(len(json.loads(out)) == 2 for out, _ in outcomes)
        assert sum(err.count(RENEWED) for _, err in outcomes) == 1  # one renewal; the other used its result

        live = live_refresh_tokens(signed_in.user)
        assert len(live) == 1
        assert live[0].token_checksum == checksum(elbia.context()["refresh_token"])
        again = elbia.ok("--debug", "resources", "list")
        assert RENEWED not in again.stderr  # the stored access token works
        elbia.ok("auth", "renew")  # and so does the stored refresh token


@needs_code
class TestDeploy:
    """``elbia functions deploy`` against ``PUT /v1/functions/{id}/code`` and a real worker deploying the code."""

    def test_deploy_a_directory_then_a_zip_then_a_bad_zip(self, signed_in, elbia, celery_worker, tmp_path):
        function = elbia.json(
            "functions", "create", "hello", "--runtime", "Python 3.12", "--handler", "app.handler", "--wait"
        )
        source = tmp_path / "hello"
        source.mkdir()
        (source / "app.py").write_text("def handler(event, context):\n    return {'greeting': 'hello'}\n")
        (source / "notes.md").write_text("left out\n")
        (source / ".elbiaignore").write_text("*.md\n")

        started = time.monotonic()
        deployed = elbia.json("functions", "deploy", source, "--wait")  # the function is named after the directory
        elapsed = time.monotonic() - started
        assert deployed["id"] == function["id"] and deployed["status"] == "active"
        assert deployed["code_sha256"] == sha256(build_archive(Path(source))) != function["code_sha256"]
        print(f"elbia functions deploy of a one-file directory, until active: {elapsed:.1f} s")

        packed = tmp_path / "packed.zip"
        with zipfile.ZipFile(packed, "w") as archive:
            archive.writestr("app.py", "def handler(event, context):\n    return 2\n")
        quiet = elbia.run("-q", "functions", "deploy", packed, "--function", "hello")
        assert quiet.returncode == 0, quiet.stderr
        assert quiet.stdout.strip() == hashlib.sha256(packed.read_bytes()).hexdigest()
        now = api_get(signed_in, elbia, f"/v1/functions/{function['id']}")
        assert (now["status"], now["code_sha256"], now["code_size"]) == (
            "active",
            quiet.stdout.strip(),
            packed.stat().st_size,
        )

        bad = tmp_path / "bad.zip"
        with zipfile.ZipFile(bad, "w") as archive:
            archive.writestr("main.py", "print(1)\n")
        refused = elbia.run("functions", "deploy", bad, "--function", "hello")
        assert refused.returncode == 2
        assert "The archive has no app.py or app/__init__.py" in refused.stderr
        assert api_get(signed_in, elbia, f"/v1/functions/{function['id']}")["code_sha256"] == now["code_sha256"]


@needs_code_and_invocations
class TestFunctions:
    """Deploy and invoke, against the contract's code and invocation endpoints."""

    def create_function(self, elbia, name: str) -> dict:
        return elbia.json("functions", "create", name, "--runtime", "Python 3.11", "--handler", "app.handler", "--wait")

    def test_deploy_a_directory_and_invoke_it(self, signed_in, elbia, celery_worker, runner_port, tmp_path):
        function = self.create_function(elbia, "hello")
        source = tmp_path / "hello"
        source.mkdir()
        (source / "app.py").write_text(
            "def handler(event, context):\n"
            "    print('greeting', event['name'])\n"
            "    if event['name'] == 'error':\n"
            "        raise ValueError('no greeting for errors')\n"
            "    return {'greeting': 'hello ' + event['name']}\n"
        )
        (source / "notes.md").write_text("left out\n")
        (source / ".elbiaignore").write_text("*.md\n")

        deployed = elbia.json("functions", "deploy", source)  # the function is named after the directory
        assert deployed["id"] == function["id"] and deployed["status"] == "active"
        assert deployed["code_sha256"] == sha256(build_archive(Path(source)))

        result = elbia.run("functions", "invoke", "hello", "--data", '{"name": "world"}', "--logs")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"greeting": "hello world"}
        assert "greeting world" in result.stderr

        raised = elbia.run("functions", "invoke", "hello", "--data", '{"name": "error"}')
        assert raised.returncode == 1
        assert "ValueError: no greeting for errors" in raised.stderr


class TestInvoke:
    """``elbia functions invoke`` against the invocation endpoints: the starter function runs on the local runtime."""

    def test_invoke_the_starter_synchronously_and_queued(self, signed_in, elbia, celery_worker, runner_port, tmp_path):
        elbia.json(
            "functions", "create", "greeter", "--runtime", "Node.js 20", "--handler", "index.handler", "--wait"
        )  # fmt: skip
        result = elbia.run("functions", "invoke", "greeter", "--data", '{"name": "world"}', "--logs")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"message": "Hello from greeter", "event": {"name": "world"}}
        assert "Invocation EXEC_" in result.stderr and "billed" in result.stderr

        event_file = tmp_path / "event.json"
        event_file.write_text('{"from": "a file"}')
        from_file = elbia.json("functions", "invoke", "greeter", "--data", f"@{event_file}")
        assert from_file["event"] == {"from": "a file"}
        from_stdin = elbia.json("functions", "invoke", "greeter", "--data", "@-", input='["stdin"]')
        assert from_stdin["event"] == ["stdin"]

        queued = elbia.json("functions", "invoke", "greeter", "--async", "--data", '{"later": true}')
        assert queued["status"] == "queued" and queued["id"].startswith("EXEC_")
        function_id = elbia.json("functions", "get", "greeter")["id"]
        deadline = time.monotonic() + TIMEOUT
        while True:
            answer = httpx.get(
                f"{signed_in.server}/v1/functions/{function_id}/invocations/{queued['id']}",
                headers={"Authorization": f"Bearer {signed_in.issued.access_token}"},
            ).json()
            if answer["status"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert answer["status"] == "succeeded"
        assert answer["result"]["event"] == {"later": True}
