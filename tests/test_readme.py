"""Every command the README shows runs verbatim, as a new user would run it after `make run`.

Each ```sh block of README.md runs in a fresh copy of the repository on the embedded defaults (its own .env,
SQLite database and demo account, as `make run` leaves them; see tests/servers.py), command by command, with
bash. Only two things are replaced: the obvious placeholders ``elb_at_...`` and ``elb_rt_...``, by a real token
and its refresh token issued here; and the port of http://127.0.0.1:8000, by the port of the gunicorn this test
starts for the commands that talk to the API (8000 may be taken on the machine that runs the suite). A command
must exit 0; a curl must answer JSON without an ``error``.
"""

import json
import re
import shutil
import subprocess

import pytest
from django.conf import settings

from tests.servers import gunicorn

pytestmark = pytest.mark.slow

README = settings.BASE_DIR / "README.md"
SERVER = "http://127.0.0.1:8000"
# These start the whole service or the whole suite: they are what this suite runs in, not something to nest.
NOT_RUN_HERE = {
    "make run": "make run starts web, worker and beat until Ctrl-C: tests/test_run_local.py runs it",
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
def token(clone) -> dict:
    """A token of the demo account holding every scope: what replaces the placeholders."""
    scopes = " ".join(settings.SCOPES)
    return json.loads(clone.manage("issue_token", "demo", "--scopes", scopes, "--name", "README", "--json"))


@pytest.fixture(scope="module")
def server(clone, tmp_path_factory):
    """gunicorn in the copy, started for the first command that needs it; its base URL."""
    running = {}
    stack = []

    def base_url() -> str:
        if "url" not in running:
            log = tmp_path_factory.mktemp("readme-server") / "gunicorn.log"
            context = gunicorn(log, cwd=clone.path, env=clone.env, workers=1)
            running["url"] = f"http://127.0.0.1:{context.__enter__()}"
            stack.append(context)
        return running["url"]

    yield base_url
    for context in stack:
        context.__exit__(None, None, None)


def test_the_readme_has_command_blocks():
    assert len(BLOCKS) >= 3
    assert any("manage.py issue_token" in command for block in BLOCKS for command in block)


@pytest.mark.parametrize("commands", BLOCKS, ids=[block[0].split("#")[0].strip()[:60] for block in BLOCKS])
def test_each_readme_block_runs_verbatim(commands, clone, token, server):
    runnable = [command for command in commands if not not_run_here(command)]
    if not runnable:
        pytest.skip("; ".join(sorted({not_run_here(command) for command in commands})))
    for printed in runnable:
        command = printed.replace("elb_at_...", token["access_token"]).replace("elb_rt_...", token["refresh_token"])
        if SERVER in command:
            command = command.replace(SERVER, server())
        if command.startswith("curl"):
            assert shutil.which("curl"), "the README's commands need curl"
        done = subprocess.run(
            ["bash", "-c", command], cwd=clone.path, env=clone.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"{printed}\nexited {done.returncode}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        if command.startswith("curl"):
            answer = json.loads(done.stdout)
            assert not (isinstance(answer, dict) and "error" in answer), f"{printed}\nanswered {answer}"
