"""`make run` (manage.py run_local) on the embedded defaults: a token that works as soon as it is printed, and a
Ctrl-C that stops every process (web, worker, beat, runtime) within honcho's grace period without an error line."""

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.servers import call, free_port, stop

pytestmark = pytest.mark.slow

START_TIMEOUT = 180
STOP_TIMEOUT = 30


def wait_for(log: Path, pattern: str, process: subprocess.Popen) -> re.Match:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = re.search(pattern, log.read_text(errors="replace"), re.MULTILINE)
        if found:
            return found
        if process.poll() is not None:
            break
        time.sleep(0.1)
    pytest.fail(f"no {pattern!r} in the output of make run:\n{log.read_text(errors='replace')[-4000:]}")


def test_the_printed_token_works_at_once_and_ctrl_c_stops_everything_cleanly(embedded, tmp_path):
    port = free_port()
    log = tmp_path / "run.log"
    with log.open("wb") as output:
        run = subprocess.Popen(
            [".venv/bin/python", "manage.py", "run_local", "--port", str(port)],
            cwd=embedded.path,
            env=embedded.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    try:
        token = wait_for(log, r"^Access token:  (elb_at_\S+)$", run).group(1)
        assert call(port, "GET", "/v1/regions", token)[0] == 200  # printed only once the API answers
        curl = wait_for(log, r"^  (curl -H .*/v1/regions)$", run).group(1)
        assert curl == f'curl -H "Authorization: Bearer {token}" http://127.0.0.1:{port}/v1/regions'
        # The seed queued its provisioning from a plain command (no tasks module imported there): the worker
        # receives it. Stop while it runs them and beat is up.
        wait_for(log, r"celery@\S+ ready", run)
        wait_for(log, r"beat: Starting", run)
        wait_for(log, r"Runner listening on", run)
        wait_for(log, r"Task resources\.tasks\.provision_resource\[\S+\] received", run)
        os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground job
        run.wait(timeout=STOP_TIMEOUT)
    finally:
        stop(run, signal.SIGINT)

    text = log.read_text(errors="replace")
    assert "SIGINT received" in text
    for name in ("web.1", "worker.1", "beat.1", "runtime.1"):
        assert re.search(rf"{re.escape(name)} stopped", text), name
    assert "SIGKILL" not in text  # honcho kills what is still running after its grace period: nothing was
    assert [line for line in text.splitlines() if "ERROR" in line or "Traceback" in line] == []
    assert run.returncode == 0


def test_a_port_in_use_is_refused_before_anything_starts(embedded):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [".venv/bin/python", "manage.py", "run_local", "--port", str(port)],
            cwd=embedded.path,
            env=embedded.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode != 0
    assert f"Port {port} is in use on 127.0.0.1: choose another, e.g. `make run PORT={port + 1}`." in done.stderr
    assert "honcho" not in done.stdout + done.stderr
