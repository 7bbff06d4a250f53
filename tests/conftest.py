"""Fixtures for the whole suite: users, tokens, API clients and a real Celery worker."""

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from elbia.accounts.services import token_issue
from tests.factories import UserFactory

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


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (rate-limit budgets, idempotency records)."""
    cache.clear()
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
    """A browser signed in to the admin as ``staff_user``."""
    client.force_login(staff_user)
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
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING") as worker:
        yield worker
