"""Fixtures for the whole suite: users, tokens, API clients, a real Celery worker, the function runner and an
AWS API emulator."""

import logging
import os
import signal
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from elbia import cache as elbia_cache
from elbia.accounts.services import token_issue
from tests.factories import UserFactory
from tests.servers import EmbeddedCopy, make_embedded_copy

ALL_SCOPES = tuple(settings.SCOPES)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Transactional tests that restore the migrated data (``serialized_rollback=True``) run before the others.

    A transactional test without it ends with a flush that recreates content types under new ids; a
    serialized test after it would then restore rows clashing with them (IntegrityError on
    django_content_type). pytest-django's own reordering (database tests, then transactional ones) runs
    after this hook and keeps this order within each group.
    """

    def restores_migrated_data(item) -> bool:
        marker = item.get_closest_marker("django_db")
        return bool(marker and marker.kwargs.get("serialized_rollback"))

    items.sort(key=lambda item: not restores_migrated_data(item))


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """The suite's own connections get a roomy statement timeout: creating and dropping the test database on
    a busy machine takes longer than a request may. The servers the tests start keep the real timeouts."""
    from django.db import connections

    options = connections["default"].settings_dict.get("OPTIONS", {})
    if "wait_timeout" in options:
        options["options"] = "-c statement_timeout=120000"
        options["wait_timeout"] = 120.5


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (rate-limit budgets, idempotency records), Redis tried first."""
    cache.clear()
    elbia_cache.clear_local()
    yield


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def account(user):
    return user.account


@pytest.fixture
def other_user(db):
    return UserFactory()


@pytest.fixture
def issue_token(db):
    """``issue_token(user, scopes=...)`` -> IssuedToken; all scopes by default."""

    def issue(user, scopes=ALL_SCOPES, **options):
        return token_issue(user=user, scopes=list(scopes), **options)

    return issue


@pytest.fixture
def make_client(issue_token):
    """``make_client(user, scopes=...)`` -> an APIClient sending that user's new bearer token."""

    def make(user, scopes=ALL_SCOPES, **options):
        client = APIClient()
        issued = issue_token(user, scopes, **options)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.access_token}")
        client.issued = issued
        return client

    return make


@pytest.fixture
def api(make_client, user):
    """An API client for ``user`` holding every scope."""
    return make_client(user)


@pytest.fixture
def other_api(make_client, other_user):
    """An API client for a user of another account, holding every scope."""
    return make_client(other_user)


@pytest.fixture
def signed_in(client, user):
    """A browser signed in to the dashboard as ``user``."""
    client.force_login(user)
    return client


@pytest.fixture
def anonymous_api():
    return APIClient()


@pytest.fixture
def staff_user(db):
    """A staff superuser without an account, as ``create_account --staff`` makes them."""
    return UserFactory(account=None, is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff_user):
    """A browser signed in to the admin as ``staff_user`` (``staff_client.user``)."""
    client.force_login(staff_user)
    client.user = staff_user
    return client


@pytest.fixture
def group_client(db):
    """``group_client("support")`` -> a browser signed in as a staff member (not superuser) of that group."""

    def make(group: str) -> Client:
        member = UserFactory(account=None, is_staff=True, username=f"{group}-member")
        member.groups.add(Group.objects.get(name=group))
        browser = Client()
        browser.force_login(member)
        browser.user = member
        return browser

    return make


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker consuming the real broker in a thread, on the test database.

    Tests that use it must see committed data: they run with ``transactional_db``.
    """
    from celery.contrib.testing.worker import start_worker

    from elbia.celery import app

    app.conf.broker_url = settings.CELERY_BROKER_URL
    app.control.purge()  # messages left by earlier tests point at rows that no longer exist
    queues = [settings.CELERY_TASK_DEFAULT_QUEUE, settings.ELBIA_INVOCATIONS_QUEUE]  # the Procfile's worker's
    with start_worker(
        app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING", queues=queues
    ) as worker:
        yield worker


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


@pytest.fixture(scope="session")
def _embedded_template(tmp_path_factory) -> EmbeddedCopy:
    return make_embedded_copy(tmp_path_factory.mktemp("embedded-template"))


@pytest.fixture
def embedded(_embedded_template, tmp_path) -> EmbeddedCopy:
    """A fresh copy of the repository on the embedded defaults, as `make run` leaves it before starting the
    processes: .env written, SQLite migrated, demo account seeded (see tests/servers.py)."""
    return _embedded_template.copy_to(tmp_path / "elbia")


@pytest.fixture(scope="session")
def aws_endpoint():
    """The URL of a real AWS API emulator (moto in server mode) on a free loopback port, for the whole session.

    boto3 gets dummy credentials and a region through the standard variables while it runs (real ones are
    hidden, so a call that misses the endpoint cannot reach AWS). The emulator checks instance types per
    region and machine images as AWS does (moto leaves both unchecked by default). It keeps its state for
    the session: tests use names of their own (and tell Elbia's objects apart by their ids and tags).
    """
    from moto import settings as moto_settings
    from moto.server import ThreadedMotoServer

    moto_settings.EC2_ENABLE_INSTANCE_TYPE_VALIDATION = True
    moto_settings.ENABLE_AMI_VALIDATION = True
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
            patch.delenv(name, raising=False)
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
