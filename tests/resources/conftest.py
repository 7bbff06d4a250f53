"""Fixtures for the resources tests: rows in a chosen state, and helpers to read API errors."""

import pytest

from tests.resources.factories import ComputeFactory, VpcFactory


@pytest.fixture
def vpc(account):
    return VpcFactory(account=account, name="main", region="us-east-1")


@pytest.fixture
def compute(account, vpc):
    return ComputeFactory(account=account, vpc=vpc, region=vpc.region, tags={"env": "prod"})


@pytest.fixture
def others_compute(other_user):
    return ComputeFactory(account=other_user.account)


def error_of(response, status: int, code: str, message: str | None = None) -> dict:
    """The error document of ``response``, after checking its status, code and (exact) message."""
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] == code
    if message is not None:
        assert error["message"] == message
    return error
