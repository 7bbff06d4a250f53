"""Real servers for the tests that need them: gunicorn on a free loopback port, on the test database.

``gunicorn(log_path, **env)`` starts it (2 workers, the repository's gunicorn.conf.py) and stops it;
``call(port, method, path, ...)`` makes one request with a timeout; ``fire`` many at once.

``make_embedded_copy`` copies the repository (sharing its .venv) and prepares it as ``make run`` does, on the
embedded defaults (SQLite, the SQLite-file broker, no Redis); ``gunicorn(..., cwd=copy.path,
environment=copy.env)`` serves such a copy.
"""

import atexit
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[1]
REQUEST_TIMEOUT = 15
START_TIMEOUT = 60  # a server starting on a busy 2-core machine
# An access log line naming the worker process that answered (see ``served_by``).
ACCESS_LOG_WITH_PID = ("--access-logfile", "-", "--access-logformat", 'pid=%(p)s "%(r)s" %(s)s')
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


def database_url(port: int | None = None) -> str:
    """The test database (test_<name>, alive only during the session), as DATABASE_URL for a server process;
    ``port``: reached through that port instead (a fault proxy)."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def gunicorn(log_path: Path, *options: str, cwd: Path = BASE_DIR, environment: dict | None = None, **env):
    """Start gunicorn (2 workers, more ``options``) on a free port of 127.0.0.1; yield (port, log path); stop it.

    It serves the test database unless ``environment`` (and ``cwd``) say otherwise, as for an embedded copy.
    """
    environment = environment if environment is not None else server_environment(**env)
    command = [sys.executable, "-m", "gunicorn", "elbia.wsgi", "--bind", "127.0.0.1:0", "--workers", "2"]
    command += ["--timeout", "30", "--graceful-timeout", "5", "--log-level", "info", *options]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=cwd, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        port = wait_for_port(server, log_path)
        wait_until_healthy(port)
        yield port, log_path
    finally:
        stop(server)


def stop(process: subprocess.Popen, signum: int = signal.SIGTERM) -> None:
    """Stop a process started in a session of its own, and everything in its group (SIGKILL after 10 s)."""
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


def call(port: int, method: str, path: str, token: str | None = None, body=None, headers=None):
    """One HTTP request with a timeout: (status, lower-cased headers, parsed JSON body, or the text if not JSON)."""
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
        if not content:
            return response.status, answer_headers, None
        try:
            return response.status, answer_headers, json.loads(content)
        except ValueError:
            return response.status, answer_headers, content.decode(errors="replace")
    finally:
        conn.close()


def fire(count: int, threads: int, request):
    """``request()`` ``count`` times from ``threads`` threads at once; every result within the timeout."""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(request) for _ in range(count)]
        return [future.result(timeout=REQUEST_TIMEOUT * 2) for future in futures]


def server_environment(**env) -> dict:
    """The environment of a server process of the tests: the test database and Redis, overridable."""
    return {
        **os.environ,
        "ELBIA_TESTING": "1",
        "DATABASE_URL": database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "elbia.settings",
        "PYTHONPATH": str(BASE_DIR),
        **env,
    }


@contextmanager
def celery(kind: str, log_path: Path, *options: str, **env):
    """Start ``celery -A elbia worker`` (prefork, 2 processes) or ``beat``; yield the process; always stop it.

    The process leads its own process group: ``os.killpg(process.pid, SIGKILL)`` kills a worker and its
    pool at once, as a machine that dies would.
    """
    command = [sys.executable, "-m", "celery", "-A", "elbia", kind, "--loglevel", "INFO", *options]
    if kind == "worker":
        command += ["--concurrency", "2", "--queues", "elbia", "--without-gossip", "--without-mingle"]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=server_environment(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def wait_for(condition, timeout: float, interval: float = 0.2, message: str = ""):
    """Poll ``condition()`` until it returns something true (returned) or ``timeout`` seconds pass (fail)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(message or f"not reached within {timeout} s")


def served_by(log_path: Path) -> set[str]:
    """The pids of the gunicorn workers that answered requests (started with ``ACCESS_LOG_WITH_PID``)."""
    return set(re.findall(r"^pid=<?(\d+)>? ", log_path.read_text(errors="replace"), re.MULTILINE))


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
    """A copy of the repository (sharing its .venv) on the embedded defaults: its own .env, var/ and SQLite files.

    Its function runner gets a port and a working directory of its own: 8471 may be taken on the machine, and
    the runner refuses a directory under /tmp (the sandbox replaces /tmp) or one its sandbox users cannot
    reach, so the directory is in the repository's var/, as the runner's default is.
    """

    path: Path
    runner_port: int = 0
    runtime_dir: str = ""

    def __post_init__(self):
        self.runner_port = self.runner_port or free_port()
        if not self.runtime_dir:
            parent = BASE_DIR / "var" / "test-runtimes"
            parent.mkdir(parents=True, exist_ok=True)
            self.runtime_dir = tempfile.mkdtemp(dir=parent)
            os.chmod(self.runtime_dir, 0o755)
            atexit.register(shutil.rmtree, self.runtime_dir, ignore_errors=True)

    @property
    def env(self) -> dict:
        return {
            **user_environment(),
            "ELBIA_RUNNER_PORT": str(self.runner_port),
            "ELBIA_RUNTIME_DIR": self.runtime_dir,
        }

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
