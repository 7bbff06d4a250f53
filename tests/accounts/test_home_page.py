"""The dashboard's overview: what the account runs, counted from its own objects only."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from elbia.accounts.models import ApiToken, TokenEnd
from elbia.accounts.services import token_revoke
from tests.factories import FunctionFactory, ResourceFactory

pytestmark = pytest.mark.django_db


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
