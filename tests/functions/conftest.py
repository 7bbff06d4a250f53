"""Fixtures for the functions tests."""

import os
import signal
import subprocess
import sys

import pytest
from django.conf import settings

from tests.functions.factories import FunctionFactory

SECRET = "s3cr3t-value-never-shown"


@pytest.fixture
def function(account):
    return FunctionFactory(account=account, name="user-authentication", tags=["auth", "team:identity"])


@pytest.fixture
def others_function(other_user):
    return FunctionFactory(account=other_user.account, name="user-authentication")


@pytest.fixture
def eager_celery():
    """Tasks queued on commit run at once, in this thread (for unit tests of whole flows without a worker)."""
    from elbia.celery import app

    app.conf.task_always_eager = True
    try:
        yield
    finally:
        app.conf.task_always_eager = False


@pytest.fixture
def runner():
    """``manage.py run_runtime`` on a free loopback port, stopped (with its environments) after the test."""
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_runtime", "--port", "0"],
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"ELBIA_RUNTIME_IDLE_SECONDS": "60"},
    )
    line = process.stdout.readline()
    assert line.startswith("Runner listening on 127.0.0.1:"), line
    port = int(line.split(":")[1].split()[0])
    yield port
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


@pytest.fixture
def runner_port(runner, settings):
    """The runner above, as the one the application calls (``ELBIA_RUNNER_PORT``)."""
    settings.ELBIA_RUNNER_PORT = runner
    return runner
