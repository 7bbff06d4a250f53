"""Keyset cursors, strict limit/offset, counts on request (Prefer) and the RFC 8288 Link header."""

from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from billing.models import Invoice
from elbia.accounts.models import Account
from elbia.api.exceptions import InvalidParameter
from elbia.api.pagination import LimitOffsetPagination
from tests.factories import AccountFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def paginate(query: str, queryset=None, prefer: str | None = None):
    headers = {"HTTP_PREFER": prefer} if prefer else {}
    request = Request(APIRequestFactory().get(f"/v1/things?{query}", **headers))
    paginator = LimitOffsetPagination()
    page = paginator.paginate_queryset(Account.objects.order_by("id") if queryset is None else queryset, request)
    return page, paginator.get_paginated_response([getattr(row, "name", row.pk) for row in page])


def links(response) -> dict[str, str]:
    result = {}
    for part in response["Link"].split(", "):
        target, rel = part.split("; ")
        result[rel.removeprefix('rel="').removesuffix('"')] = target.strip("<>")
    return result


def query_of(url: str) -> str:
    return urlsplit(url).query


def walk(first_query: str, queryset, rel: str = "next", prefer=None) -> list[list]:
    """Follow ``rel`` links from the page of ``first_query`` to the end: the pages' names."""
    pages, query = [], first_query
    while query is not None:
        _, response = paginate(query, queryset, prefer)
        pages.append(response.data)
        query = query_of(links(response)[rel]) if rel in links(response) else None
        assert len(pages) < 50
    return pages


def flat(pages: list[list]) -> list:
    return [item for page in pages for item in page]


@pytest.fixture
def seven_accounts():
    return [AccountFactory(name=f"a{index}") for index in range(7)]


def test_defaults_send_no_count(seven_accounts):
    page, response = paginate("")
    assert [account.name for account in page] == [f"a{index}" for index in range(7)]
    assert "X-Total-Count" not in response and "Preference-Applied" not in response
    assert set(links(response)) == {"first"}
    assert response.data == [f"a{index}" for index in range(7)]


def test_a_first_page_costs_one_query_and_no_count(seven_accounts):
    with CaptureQueriesContext(connection) as queries:
        paginate("limit=2")
    assert len(queries) == 1
    assert "COUNT(" not in queries[0]["sql"].upper()
    assert "LIMIT 3" in queries[0]["sql"]


def test_next_links_carry_a_cursor_and_walk_the_whole_list(seven_accounts):
    _, response = paginate("limit=2&status=active")
    found = links(response)
    assert set(found) == {"first", "next"}
    assert found["first"] == "http://testserver/v1/things?limit=2&status=active"
    params = parse_qs(query_of(found["next"]))
    assert set(params) == {"limit", "status", "cursor"} and params["status"] == ["active"]

    pages = walk("limit=2", Account.objects.order_by("id"))
    assert pages == [["a0", "a1"], ["a2", "a3"], ["a4", "a5"], ["a6"]]


def test_a_cursor_page_costs_one_query_whatever_its_depth(seven_accounts):
    _, response = paginate("limit=2&offset=4")
    next_query = query_of(links(response)["next"])
    with CaptureQueriesContext(connection) as queries:
        page, _ = paginate(next_query)
    assert [account.name for account in page] == ["a6"]
    assert len(queries) == 1 and "OFFSET" not in queries[0]["sql"].upper()


def test_prev_links_of_cursor_pages_walk_back(seven_accounts):
    last_page = walk("limit=3", Account.objects.order_by("id"))[-1]
    assert last_page == ["a6"]
    _, response = paginate("limit=3")
    _, second = paginate(query_of(links(response)["next"]))
    _, third = paginate(query_of(links(second)["next"]))
    back = walk(query_of(links(third)["prev"]), Account.objects.order_by("id"), rel="prev")
    assert back == [["a3", "a4", "a5"], ["a0", "a1", "a2"]]


def test_offset_pages_still_work_and_link_forward_with_a_cursor(seven_accounts):
    page, response = paginate("limit=2&offset=2&status=active")
    assert [account.name for account in page] == ["a2", "a3"]
    found = links(response)
    assert set(found) == {"first", "prev", "next"}
    assert found["prev"] == "http://testserver/v1/things?limit=2&status=active"
    assert "offset" not in parse_qs(query_of(found["next"]))
    assert paginate(query_of(found["next"]))[1].data == ["a4", "a5"]


def test_descending_orderings_with_ties_are_walked_by_id():
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    for index in range(5):
        AccountFactory(name=f"t{index}", created_at=moment + timedelta(days=index // 2))  # pairs share a moment
    ordered = Account.objects.order_by("-created_at", "-id")
    expected = list(ordered.values_list("name", flat=True))
    assert flat(walk("limit=2", ordered)) == expected
    assert flat(walk("limit=1", ordered)) == expected


def test_invoices_walk_by_period_and_id(account):
    for month in (1, 2, 3, 4):
        InvoiceFactory(account=account, period=date(2025, month, 1))
    for ordering in (("-period", "-id"), ("period", "id"), ("-created_at", "-id")):
        ordered = Invoice.objects.order_by(*ordering)
        assert flat(walk("limit=3", ordered)) == list(ordered.values_list("pk", flat=True)), ordering


def test_an_ordering_without_the_primary_key_gets_it():
    for name in ("b", "a", "b", "a", "b"):
        AccountFactory(name=name)
    ordered = Account.objects.order_by("name")
    assert flat(walk("limit=2", ordered)) == ["a", "a", "b", "b", "b"]


def test_cursor_with_offset_is_a_400_naming_both(seven_accounts):
    _, response = paginate("limit=2")
    cursor = parse_qs(query_of(links(response)["next"]))["cursor"][0]
    with pytest.raises(InvalidParameter) as raised:
        paginate(f"cursor={cursor}&offset=2")
    assert "'cursor'" in str(raised.value.detail) and "'offset'" in str(raised.value.detail)


@pytest.mark.parametrize("cursor", ["", "abc", "!!!", "eyJvIjoiaWQifQ", "x" * 600, "%EF%BC%91"])
def test_a_cursor_this_list_did_not_give_is_a_400(seven_accounts, cursor):
    with pytest.raises(InvalidParameter) as raised:
        paginate(f"cursor={cursor}")
    assert "Parameter 'cursor'" in str(raised.value.detail)


def test_a_cursor_of_another_ordering_is_a_400(seven_accounts):
    _, response = paginate("limit=2")
    cursor = parse_qs(query_of(links(response)["next"]))["cursor"][0]
    with pytest.raises(InvalidParameter):
        paginate(f"cursor={cursor}", Account.objects.order_by("-id"))


def test_prefer_count_exact_adds_the_total_and_the_last_link(seven_accounts):
    _, response = paginate("limit=2&offset=2", prefer="count=exact")
    assert response["X-Total-Count"] == "7"
    assert response["Preference-Applied"] == "count=exact"
    assert links(response)["last"] == "http://testserver/v1/things?limit=2&offset=6"
    assert "Prefer" in response["Vary"]


def test_prefer_count_exact_on_a_cursor_page_counts_the_whole_list(seven_accounts):
    _, response = paginate("limit=2")
    _, second = paginate(query_of(links(response)["next"]), prefer="return=minimal, count=exact")
    assert second["X-Total-Count"] == "7"


def test_a_page_that_shows_the_end_counts_without_a_count_query(seven_accounts):
    with CaptureQueriesContext(connection) as queries:
        _, response = paginate("limit=50", prefer="count=exact")
    assert response["X-Total-Count"] == "7" and len(queries) == 1


def test_offset_past_the_end_is_an_empty_page(seven_accounts):
    page, response = paginate("offset=100", prefer="count=exact")
    assert page == []
    assert response["X-Total-Count"] == "7"
    assert "next" not in links(response)


def test_empty_list():
    page, response = paginate("", prefer="count=exact")
    assert page == []
    assert response["X-Total-Count"] == "0"
    assert links(response)["last"] == "http://testserver/v1/things?limit=50"


def test_prefer_count_estimated(seven_accounts):
    _, response = paginate("limit=2", prefer="count=estimated")
    if connection.vendor == "postgresql":
        assert response["Preference-Applied"] == "count=estimated"
        assert int(response["X-Total-Count-Estimate"]) >= 3  # never below what the page has seen
        assert "X-Total-Count" not in response and "last" not in links(response)
    else:  # no planner estimate: the exact count, said so
        assert response["Preference-Applied"] == "count=exact"
        assert response["X-Total-Count"] == response["X-Total-Count-Estimate"] == "7"


def test_unknown_preferences_are_ignored(seven_accounts):
    _, response = paginate("limit=2", prefer="count=sometimes, handling=strict")
    assert "X-Total-Count" not in response and "Preference-Applied" not in response


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
