"""Configuration is checked at start: a bad value stops every process with a message naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What each process runs first: manage.py commands, gunicorn (the WSGI module), the Celery worker and beat.
STARTS = {
    "manage.py": [sys.executable, "manage.py", "check"],
    "web": [sys.executable, "-c", "from elbia.wsgi import application"],
    "worker": [sys.executable, "-c", "import django; from elbia.celery import app; django.setup()"],
}


def start(command: list[str], **variables: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DEBUG": "1", **variables}
    environment.pop("ELBIA_TESTING", None)
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60)


def assert_stops_naming(outcome: subprocess.CompletedProcess, variable: str) -> None:
    assert outcome.returncode != 0
    assert "ImproperlyConfigured" in outcome.stderr and variable in outcome.stderr, outcome.stderr[-2000:]


@pytest.mark.parametrize("process", sorted(STARTS))
def test_an_unknown_provider_stops_every_process(process):
    assert_stops_naming(start(STARTS[process], ELBIA_PROVIDER="simulatd"), "ELBIA_PROVIDER")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ELBIA_PROVIDER", "os.path"),  # importable, but not a provider
        ("REDIS_URL", "127.0.0.1:6379"),
        ("CELERY_BROKER_URL", "kafka://127.0.0.1:9092"),
        ("DATABASE_URL", "mysql://127.0.0.1/elbia"),
    ],
)
def test_a_bad_backend_stops_the_process_naming_it(variable, value):
    assert_stops_naming(start(STARTS["manage.py"], **{variable: value}), variable)


def test_good_settings_start(tmp_path):
    outcome = start(STARTS["manage.py"], DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert outcome.returncode == 0, outcome.stderr[-2000:]
