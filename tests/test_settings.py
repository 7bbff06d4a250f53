"""Configuration is checked at start (a bad value stops every process with a message naming the variable), and
what the environment sets: hosts with their ports, TLS behind a proxy, the timeouts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from elbia.config import DEFAULT_PORTS, AllowedHost, parse_allowed_hosts

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


def settings_of(**env) -> dict:
    """Some settings as a fresh process reads them from ``env``."""
    script = (
        "import django, json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'elbia.settings'; django.setup()\n"
        "from django.conf import settings as s\n"
        "db = s.DATABASES['default']\n"
        "print(json.dumps({'hsts': s.SECURE_HSTS_SECONDS, 'subdomains': s.SECURE_HSTS_INCLUDE_SUBDOMAINS,"
        " 'proxy': s.SECURE_PROXY_SSL_HEADER, 'hosts': s.ALLOWED_HOSTS, 'engine': db['ENGINE'],"
        " 'options': db.get('OPTIONS', {}), 'cache': s.CACHES['default'].get('OPTIONS', {}),"
        " 'broker': getattr(s, 'CELERY_BROKER_TRANSPORT_OPTIONS', {}), 'hard': s.CELERY_TASK_TIME_LIMIT}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "ELBIA_TESTING": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


class TestAllowedHosts:
    def test_ports_are_part_of_an_entry(self):
        assert parse_allowed_hosts("api.example.com, .example.org:8443,localhost:*,[::1]:8000") == [
            AllowedHost("api.example.com", DEFAULT_PORTS),
            AllowedHost(".example.org", DEFAULT_PORTS | {"8443"}),
            AllowedHost("localhost", None),
            AllowedHost("[::1]", DEFAULT_PORTS | {"8000"}),
        ]

    def test_the_same_host_twice_adds_its_ports(self):
        assert parse_allowed_hosts("a.example:81,a.example:82") == [
            AllowedHost("a.example", DEFAULT_PORTS | {"81", "82"})
        ]

    @pytest.mark.parametrize("raw", ["", "a.example:0", "a.example:99999", "a.example:http", "[::1]x", "user@host"])
    def test_nonsense_is_refused(self, raw):
        with pytest.raises(ValueError):
            parse_allowed_hosts(raw)

    def test_django_gets_the_hosts_without_their_ports(self):
        assert settings_of(ALLOWED_HOSTS="api.example.com:8443,.example.org")["hosts"] == [
            "api.example.com",
            ".example.org",
        ]


class TestTransportSecurity:
    def test_off_by_default(self):
        read = settings_of()
        assert (read["hsts"], read["proxy"]) == (0, None)

    def test_from_the_environment(self):
        read = settings_of(
            SECURE_HSTS_SECONDS="31536000",
            SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
            SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto",
        )
        assert (read["hsts"], read["subdomains"]) == (31536000, True)
        assert read["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]

    @pytest.mark.django_db
    def test_a_request_the_proxy_says_is_https_gets_hsts(self, client):
        with override_settings(SECURE_HSTS_SECONDS=3600, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
            secure = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https")
            plain = client.get("/healthz")
        assert secure["Strict-Transport-Security"] == "max-age=3600"
        assert "Strict-Transport-Security" not in plain


class TestTimeouts:
    def test_defaults_answer_in_seconds(self):
        read = settings_of(DATABASE_URL="postgres://u@db.example:5432/elbia", REDIS_URL="redis://cache.example:6379/0")
        assert read["engine"] == "elbia.db.postgresql"
        assert read["options"] == {"connect_timeout": 2, "options": "-c statement_timeout=2000", "wait_timeout": 2.5}
        assert (read["cache"]["SOCKET_CONNECT_TIMEOUT"], read["cache"]["SOCKET_TIMEOUT"]) == (1.0, 1.0)
        assert (read["broker"]["socket_connect_timeout"], read["broker"]["socket_timeout"]) == (1.0, 1.0)
        # A message is redelivered only after the longest a task may take, its retry countdown included.
        assert read["broker"]["visibility_timeout"] > read["hard"] + 60

    def test_from_the_environment(self):
        read = settings_of(
            DATABASE_URL="postgres://u@db.example:5432/elbia",
            DATABASE_STATEMENT_TIMEOUT="0",
            DATABASE_CONNECT_TIMEOUT="5",
            REDIS_URL="redis://cache.example:6379/0",
            REDIS_SOCKET_TIMEOUT="0.5",
        )
        assert read["options"] == {"connect_timeout": 5, "options": "-c statement_timeout=0", "wait_timeout": None}
        assert read["cache"]["SOCKET_TIMEOUT"] == 0.5
