"""The dashboard's Resources page: only the account's resources, filtered by its FilterSet and paged."""

import pytest

from tests.factories import ResourceFactory
from tests.pages import rows

pytestmark = pytest.mark.django_db


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
    assert "must be one of: " in response.content.decode()
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
