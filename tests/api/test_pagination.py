"""Strict limit/offset, X-Total-Count and the RFC 8288 Link header."""

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from elbia.accounts.models import Account
from elbia.api.exceptions import InvalidParameter
from elbia.api.pagination import LimitOffsetPagination
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db


def paginate(query: str):
    request = Request(APIRequestFactory().get(f"/v1/things?{query}"))
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(Account.objects.order_by("id"), request)
    return page, paginator.get_paginated_response([row.name for row in page])


def links(response) -> dict[str, str]:
    result = {}
    for part in response["Link"].split(", "):
        target, rel = part.split("; ")
        result[rel.removeprefix('rel="').removesuffix('"')] = target.strip("<>")
    return result


@pytest.fixture
def seven_accounts():
    return [AccountFactory(name=f"a{index}") for index in range(7)]


def test_defaults(seven_accounts):
    page, response = paginate("")
    assert [account.name for account in page] == [f"a{index}" for index in range(7)]
    assert response["X-Total-Count"] == "7"
    assert set(links(response)) == {"first", "last"}
    assert response.data == [f"a{index}" for index in range(7)]


def test_middle_page_links_keep_other_parameters(seven_accounts):
    page, response = paginate("limit=2&offset=2&status=active")
    assert [account.name for account in page] == ["a2", "a3"]
    found = links(response)
    assert set(found) == {"first", "prev", "next", "last"}
    assert found["first"] == "http://testserver/v1/things?limit=2&status=active"
    assert found["prev"] == "http://testserver/v1/things?limit=2&status=active"
    assert found["next"] == "http://testserver/v1/things?limit=2&offset=4&status=active"
    assert found["last"] == "http://testserver/v1/things?limit=2&offset=6&status=active"


def test_offset_past_the_end_is_an_empty_page(seven_accounts):
    page, response = paginate("offset=100")
    assert page == []
    assert response["X-Total-Count"] == "7"
    assert "next" not in links(response)


def test_empty_list():
    page, response = paginate("")
    assert page == []
    assert response["X-Total-Count"] == "0"
    assert links(response)["last"] == "http://testserver/v1/things?limit=50"


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=",
        "limit=%EF%BC%91",
        "offset=-1",
        "offset=x",
        "offset=99999999999999999999",
        "limit=+5",
        "limit= 5",
    ],
)
def test_bad_values_are_400(query):
    with pytest.raises(InvalidParameter) as raised:
        paginate(query)
    assert "Parameter '" in str(raised.value.detail)


def test_limits_at_the_boundary(seven_accounts):
    assert len(paginate("limit=1")[0]) == 1
    assert len(paginate("limit=200")[0]) == 7
