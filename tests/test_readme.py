"""Every command the README shows runs verbatim, as a new user would run it after `make run`.

Each ```sh block of README.md runs in a fresh copy of the repository on the embedded defaults (its own .env,
SQLite database and demo account, as `make run` leaves them; see tests/servers.py), command by command, with
bash, while `make run`'s processes (manage.py run_local: web, worker, beat, runtime) serve that copy on a free
port.
Only these are replaced, nothing else:

- the obvious placeholders ``elb_at_...`` and ``elb_rt_...``, by a token of the demo account (every scope)
  issued for the block;
- the port of http://127.0.0.1:8000, by the port the service listens on here (8000 may be taken where the suite
  runs); the command-line client, whose default server is that URL, gets the same through its ``ELBIA_SERVER``
  variable (and keeps its configuration in a temporary ``ELBIA_CONFIG``);
- what a command asks the user to paste (``# paste the access token, then the refresh token``) is given on its
  standard input.

A command must exit 0; a curl must answer JSON without an ``error``.
"""

import json
import re
import shutil
import signal
import subprocess
import time

import pytest
from django.conf import settings

from tests.servers import free_port, stop

pytestmark = pytest.mark.slow

README = settings.BASE_DIR / "README.md"
SERVER = "http://127.0.0.1:8000"
PASTE = "# paste the access token, then the refresh token"
START_TIMEOUT = 180
COMMAND_TIMEOUT = 120
# These start the whole service or the whole suite: they are what this suite runs in, not something to nest.
NOT_RUN_HERE = {
    "make run": "make run runs the service until Ctrl-C: tests/test_run_local.py runs it",
    "make test": "make test runs this very suite",
}


def readme_blocks() -> list[list[str]]:
    """The commands of each ```sh block (a line ending in a backslash continues on the next)."""
    blocks = []
    for body in re.findall(r"^```sh\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL):
        commands = re.sub(r"\\\n\s*", "", body).splitlines()
        blocks.append([command for command in commands if command.strip()])
    return blocks


BLOCKS = readme_blocks()


def not_run_here(command: str) -> str | None:
    return next((reason for prefix, reason in NOT_RUN_HERE.items() if command.startswith(prefix)), None)


@pytest.fixture(scope="module")
def clone(_embedded_template, tmp_path_factory):
    """One fresh copy for the README's blocks, in their order."""
    return _embedded_template.copy_to(tmp_path_factory.mktemp("readme") / "elbia")


@pytest.fixture(scope="module")
def service(clone, tmp_path_factory):
    """`make run`'s processes serving the copy on a free port (what the README's commands talk to); its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("readme-run") / "run.log"
    with log.open("wb") as output:
        run = subprocess.Popen(
            [".venv/bin/python", "manage.py", "run_local", "--port", str(port)],
            cwd=clone.path,
            env=clone.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while "Access token:" not in log.read_text(errors="replace"):  # printed once /healthz answers
            if run.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make run did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(run, signal.SIGINT)


@pytest.fixture
def user_env(clone, service, tmp_path) -> dict:
    return {**clone.env, "ELBIA_SERVER": service, "ELBIA_CONFIG": str(tmp_path / "elbia-cli.json")}


def issue_token(clone) -> dict:
    """A token of the demo account holding every scope, as `manage.py issue_token --json` prints it."""
    scopes = " ".join(settings.SCOPES)
    return json.loads(clone.manage("issue_token", "demo", "--scopes", scopes, "--name", "README", "--json"))


def test_the_readme_has_command_blocks():
    assert len(BLOCKS) >= 3
    assert any("manage.py issue_token" in command for block in BLOCKS for command in block)


@pytest.mark.parametrize("commands", BLOCKS, ids=[block[0].split("#")[0].strip()[:60] for block in BLOCKS])
def test_each_readme_block_runs_verbatim(commands, clone, service, user_env):
    runnable = [command for command in commands if not not_run_here(command)]
    if not runnable:
        pytest.skip("; ".join(sorted({not_run_here(command) for command in commands})))
    token = issue_token(clone)
    for printed in runnable:
        command = printed.replace("elb_at_...", token["access_token"]).replace("elb_rt_...", token["refresh_token"])
        command = command.replace(SERVER, service)
        pasted = f"{token['access_token']}\n{token['refresh_token']}\n" if PASTE in command else ""
        if command.startswith("curl"):
            assert shutil.which("curl"), "the README's commands need curl"
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=clone.path,
            env=user_env,
            input=pasted,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        assert done.returncode == 0, (
            f"{printed}\nexited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )
        if command.startswith("curl"):
            answer = json.loads(done.stdout)
            assert not (isinstance(answer, dict) and "error" in answer), f"{printed}\nanswered {answer}"
