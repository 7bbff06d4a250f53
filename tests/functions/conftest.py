"""Fixtures for the functions tests."""

import pytest

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
