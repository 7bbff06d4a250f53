"""Fixtures for the command-line client: ``elbia`` run in a subprocess against pytest-django's live server.

The client is run as ``python -m elbia_cli`` from a temporary directory with only ``cli/`` on its
path, so it cannot import the server's code; its config lives in the test's temporary directory.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from elbia.accounts.services import IssuedToken, token_issue
from tests.factories import UserFactory

CLI_DIR = Path(__file__).resolve().parents[2] / "cli"
TIMEOUT = 120  # seconds a single command may take before the test fails


def issued_json(issued: IssuedToken) -> str:
    """What ``manage.py issue_token --json`` prints for this token."""
    return json.dumps(
        {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "expires_at": issued.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "scopes": issued.scopes,
            "client_id": issued.client_id,
        }
    )


@dataclass
class Elbia:
    """Runs ``elbia`` with its own config file, in its own working directory."""

    home: Path

    @property
    def config_path(self) -> Path:
        return self.home / "config" / "elbia" / "config.json"

    @property
    def config(self) -> dict:
        return json.loads(self.config_path.read_text())

    def context(self, name: str = "default") -> dict:
        return self.config["contexts"][name]

    def environment(self) -> dict[str, str]:
        environment = {name: value for name, value in os.environ.items() if not name.startswith("ELBIA_")}
        environment.update(ELBIA_CONFIG=str(self.config_path), PYTHONPATH=str(CLI_DIR), NO_COLOR="1")
        environment.pop("DJANGO_SETTINGS_MODULE", None)
        return environment

    def command(self, *args) -> list[str]:
        return [sys.executable, "-m", "elbia_cli", *map(str, args)]

    def run(self, *args, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args),
            cwd=self.home,
            env=self.environment(),
            input=input,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )

    def start(self, *args) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(*args),
            cwd=self.home,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ok(self, *args, input: str | None = None) -> subprocess.CompletedProcess:
        """Run and insist on exit status 0."""
        result = self.run(*args, input=input)
        assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        return result

    def json(self, *args, input: str | None = None):
        """Run with ``--output json`` (exit 0) and parse what it printed."""
        return json.loads(self.ok(*args, "--output", "json", input=input).stdout)

    def login(self, server: str, issued: IssuedToken, name: str = "default") -> subprocess.CompletedProcess:
        return self.ok("auth", "login", "--server", server, "--name", name, "--token-stdin", input=issued_json(issued))


@pytest.fixture
def elbia(tmp_path) -> Elbia:
    home = tmp_path / "home"
    home.mkdir()
    return Elbia(home)


@pytest.fixture
def server(live_server, settings, tmp_path) -> str:
    """The live server's base URL; invoice PDFs go to the test's own media root."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return live_server.url


@dataclass
class SignedIn:
    user: object
    issued: IssuedToken
    server: str

    @property
    def account(self):
        return self.user.account


@pytest.fixture
def signed_in(server, elbia) -> SignedIn:
    """A user whose token (every scope) ``elbia auth login`` stored as the current context."""
    user = UserFactory()
    issued = token_issue(user=user, scopes=list(settings.SCOPES), name="cli")
    elbia.login(server, issued)
    return SignedIn(user=user, issued=issued, server=server)
