"""The dashboard's overview pages: only the account's resources and functions, filtered and paged."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from elbia.accounts.models import ApiToken, TokenEnd
from elbia.accounts.services import token_revoke
from tests.factories import FunctionFactory, ResourceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


def rows(response) -> int:
    return response.content.decode().count("<tr>") - 1  # minus the header row


def test_home_counts_only_the_accounts_objects(
    signed_in, user, account, other_user, issue_token, django_assert_num_queries
):
    ResourceFactory.create_batch(2, account=account)
    ResourceFactory(account=account, status="pending")
    ResourceFactory(account=account, status="deleted")
    ResourceFactory.create_batch(5, account=other_user.account)
    FunctionFactory.create_batch(4, account=account, status="deploying")
    issue_token(user, scopes=["resources:read"])
    token_revoke(api_token=issue_token(user, scopes=["resources:read"]).api_token, reason=TokenEnd.BY_USER)
    expired = issue_token(user, scopes=["resources:read"]).api_token
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    issue_token(other_user, scopes=["resources:read"])
    # session, user, account, one aggregate each for resources, functions and tokens,
    # then this month's usage: price book, executions, compute resources
    with django_assert_num_queries(9):
        page = signed_in.get("/").content.decode()
    stats = re.findall(r'stat-value">(\d+)</span>\s*<span class="stat-detail">(\d+) active', page)
    # live resources (each function brings its backing resource), functions, the user's tokens
    assert stats == [("7", "6"), ("4", "0"), ("3", "1")]


def test_resources_page_shows_only_the_accounts_resources(signed_in, account, other_user):
    mine = ResourceFactory(account=account, name="my-server", instance_type="t2.small")
    theirs = ResourceFactory(account=other_user.account, name="their-server")
    page = signed_in.get("/resources/").content.decode()
    assert mine.public_id in page and "my-server" in page and "t2.small · 2048MB" in page
    assert theirs.public_id not in page and "their-server" not in page


def test_resources_page_filters(signed_in, account):
    ResourceFactory(account=account, region="eu-west-1", status="active", name="eu-active")
    ResourceFactory(account=account, region="us-east-1", status="failed", name="us-failed")
    ResourceFactory(account=account, region="eu-west-1", type="vpc", instance_type="", name="eu-vpc")
    ResourceFactory(account=account, status="deleted", name="gone")

    everything = signed_in.get("/resources/")
    assert rows(everything) == 3 and "gone" not in everything.content.decode()
    by_region = signed_in.get("/resources/?region=eu-west-1").content.decode()
    assert "eu-active" in by_region and "eu-vpc" in by_region and "us-failed" not in by_region
    by_type = signed_in.get("/resources/?type=vpc&region=eu-west-1")
    assert rows(by_type) == 1 and "eu-vpc" in by_type.content.decode()
    deleted = signed_in.get("/resources/?status=deleted")
    assert rows(deleted) == 1 and "gone" in deleted.content.decode()
    none = signed_in.get("/resources/?status=pending").content.decode()
    assert "No resources match these filters" in none


@pytest.mark.parametrize("query", ["status=exploded", "region=mars-1", "type=spaceship", "region=%00"])
def test_resources_page_refuses_unknown_filter_values(signed_in, account, query):
    ResourceFactory(account=account)
    response = signed_in.get(f"/resources/?{query}")
    assert response.status_code == 400
    assert "Select a valid choice." in response.content.decode()
    assert rows(response) <= 0


@pytest.mark.parametrize("count", [1, 60])
def test_resources_page_query_count_does_not_grow(signed_in, account, django_assert_num_queries, count):
    vpc = ResourceFactory(account=account, type="vpc", instance_type="", name="main-vpc")
    ResourceFactory.create_batch(count, account=account, vpc=vpc)
    # session, user, account, count, one page of resources with their VPC and function joined
    with django_assert_num_queries(5):
        response = signed_in.get("/resources/")
    assert rows(response) == min(count + 1, 50)
    assert "main-vpc" in response.content.decode()


def test_resources_page_pages_by_fifty_keeping_filters(signed_in, account):
    ResourceFactory.create_batch(51, account=account, region="eu-west-1")
    first = signed_in.get("/resources/?region=eu-west-1")
    assert rows(first) == 50
    assert 'href="?region=eu-west-1&amp;page=2"' in first.content.decode()
    assert rows(signed_in.get("/resources/?region=eu-west-1&page=2")) == 1
    assert rows(signed_in.get("/resources/?region=eu-west-1&page=999")) == 1  # the last page


def test_functions_page_shows_only_the_accounts_functions(signed_in, account, other_user):
    mine = FunctionFactory(account=account, name="user-authentication", tags=["auth"], memory_mb=256)
    theirs = FunctionFactory(account=other_user.account, name="their-function")
    page = signed_in.get("/functions/").content.decode()
    assert mine.public_id in page and "user-authentication" in page and "256MB" in page and "auth" in page
    assert theirs.public_id not in page and "their-function" not in page


def test_functions_page_filters(signed_in, account):
    FunctionFactory(account=account, name="live-one", status="active", region="us-east-1", tags=["auth", "edge"])
    FunctionFactory(account=account, name="old-one", status="deprecated", region="eu-west-1", runtime="Python 3.12")
    FunctionFactory(account=account, name="deleted-one", status="deleted")
    assert rows(signed_in.get("/functions/")) == 2
    deprecated = signed_in.get("/functions/?status=deprecated")
    assert rows(deprecated) == 1 and "old-one" in deprecated.content.decode()
    assert rows(signed_in.get("/functions/?region=us-east-1")) == 1
    assert signed_in.get("/functions/?status=sleeping").status_code == 400
    python = signed_in.get("/functions/?runtime=Python+3.12")
    assert rows(python) == 1 and "old-one" in python.content.decode()
    tagged = signed_in.get("/functions/?tag=edge")
    assert rows(tagged) == 1 and "live-one" in tagged.content.decode()
    assert "No functions match these filters" in signed_in.get("/functions/?tag=nothing-has-this").content.decode()
    assert signed_in.get("/functions/?runtime=Cobol+85").status_code == 400
    assert signed_in.get("/functions/?tag=%3Cscript%3E").status_code == 400


@pytest.mark.parametrize("count", [1, 60])
def test_functions_page_query_count_does_not_grow(signed_in, account, django_assert_num_queries, count):
    FunctionFactory.create_batch(count, account=account)
    with django_assert_num_queries(5):
        response = signed_in.get("/functions/")
    assert rows(response) == min(count, 50)
