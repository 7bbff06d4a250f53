"""The dashboard's Functions page: only the account's functions, filtered by its FilterSet and paged."""

import pytest

from tests.factories import FunctionFactory
from tests.pages import rows

pytestmark = pytest.mark.django_db


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
