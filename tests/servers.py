"""Real servers for the tests that need them: gunicorn on a free loopback port, on the test database.

``gunicorn(log_path, **env)`` starts it (2 workers, the repository's gunicorn.conf.py) and stops it;
``call(port, method, path, ...)`` makes one request with a timeout; ``fire`` many at once.
"""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

BASE_DIR = Path(__file__).resolve().parents[1]
REQUEST_TIMEOUT = 15
START_TIMEOUT = 30


def database_url(port: int | None = None) -> str:
    """The test database (test_<name>, alive only during the session), as DATABASE_URL for a server process;
    ``port``: reached through that port instead (a fault proxy)."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}/{db['NAME']}"


@contextmanager
def gunicorn(log_path: Path, *options: str, **env):
    """Start gunicorn (2 workers, more ``options``) on a free port of 127.0.0.1; yield (port, log path); stop it."""
    environment = server_environment(**env)
    command = [sys.executable, "-m", "gunicorn", "elbia.wsgi", "--bind", "127.0.0.1:0", "--workers", "2"]
    command += ["--timeout", "30", "--graceful-timeout", "5", "--log-level", "info", *options]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command, cwd=BASE_DIR, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        port = wait_for_port(server, log_path)
        wait_until_healthy(port)
        yield port, log_path
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=10)


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
