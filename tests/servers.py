"""Real servers for the tests that need them: gunicorn on a free loopback port, and copies of the repository
run on the embedded defaults (SQLite, the SQLite-file broker, no Redis) as ``make run`` runs them."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[1]
REQUEST_TIMEOUT = 15
START_TIMEOUT = 60
# What `make test` sets for the suite: a user's shell has none of it, so the embedded copies drop it.
SUITE_ONLY_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "ELBIA_TESTING",
    "DJANGO_SETTINGS_MODULE",
    "DEBUG",
    "SECRET_KEY",
    "PYTHONPATH",
)


@contextmanager
def gunicorn(log_path: Path, *, env: dict, cwd: Path = BASE_DIR, workers: int = 2):
    """Start gunicorn (``workers`` processes, access log with each worker's pid) on a free port of 127.0.0.1;
    yield the port; always stop it."""
    command = [sys.executable, "-m", "gunicorn", "elbia.wsgi", "--bind", "127.0.0.1:0", "--workers", str(workers)]
    command += ["--timeout", "30", "--graceful-timeout", "5", "--log-level", "info"]
    command += ["--access-logfile", "-", "--access-logformat", 'pid=%(p)s "%(r)s" %(s)s']
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        port = wait_for_port(server, log_path)
        wait_until_healthy(port)
        yield port
    finally:
        stop(server)


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    """Stop a process started in a session of its own (and everything in its group)."""
    if process.poll() is None:
        os.killpg(process.pid, signum)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def wait_for_port(server: subprocess.Popen, log_path: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log_path.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        if server.poll() is not None:
            break
        time.sleep(0.05)
    pytest.fail(f"gunicorn did not start:\n{log_path.read_text(errors='replace')[-3000:]}")


def wait_until_healthy(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if call(port, "GET", "/healthz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("gunicorn did not answer /healthz")


def served_by(log_path: Path) -> set[str]:
    """The pids of the gunicorn workers that answered requests (from the access log)."""
    return set(re.findall(r"^pid=<?(\d+)>? ", log_path.read_text(errors="replace"), re.MULTILINE))


def call(port: int, method: str, path: str, token: str | None = None, body=None, headers=None):
    """One HTTP request with a timeout: (status, lower-cased headers, parsed JSON body or None)."""
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    if body is not None:
        sent["Content-Type"] = "application/json"
        body = json.dumps(body)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        content = response.read()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, answer_headers, json.loads(content) if content else None
    finally:
        conn.close()


def fire(count: int, threads: int, request):
    """``request()`` ``count`` times from ``threads`` threads at once; every result within the timeout."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(request) for _ in range(count)]
        return [future.result(timeout=REQUEST_TIMEOUT * 2) for future in futures]


def free_port() -> int:
    """A loopback port free at this moment (for servers that cannot bind port 0 themselves, such as honcho's)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def user_environment() -> dict:
    """The environment of a user's shell: this one without what `make test` set for the suite."""
    return {name: value for name, value in os.environ.items() if name not in SUITE_ONLY_VARIABLES}


@dataclass
class EmbeddedCopy:
    """A copy of the repository (sharing its .venv) on the embedded defaults: its own .env, var/ and SQLite files."""

    path: Path

    @property
    def env(self) -> dict:
        return user_environment()

    def run(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a command in the copy as a user would; fail the test with its output unless it succeeds."""
        done = subprocess.run(
            command, cwd=self.path, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            pytest.fail(f"{' '.join(command)} failed ({done.returncode}):\n{output}")
        return done

    def manage(self, *arguments: str) -> str:
        return self.run(".venv/bin/python", "manage.py", *arguments).stdout

    def copy_to(self, destination: Path) -> "EmbeddedCopy":
        shutil.copytree(self.path, destination, symlinks=True)
        return EmbeddedCopy(destination)


def make_embedded_copy(destination: Path) -> EmbeddedCopy:
    """Copy the repository's files (tracked or not ignored) to ``destination``, link its .venv, and prepare it as
    ``make run`` does before it starts the processes: `make .env`, migrate, seed the demo account."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=BASE_DIR,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = BASE_DIR / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    (destination / ".venv").symlink_to(BASE_DIR / ".venv")
    copy = EmbeddedCopy(destination)
    copy.run("make", "--no-print-directory", "-s", ".env")
    copy.manage("migrate", "--noinput")
    copy.manage("seed_demo", "--no-token")
    return copy
