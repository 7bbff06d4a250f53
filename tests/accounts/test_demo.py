"""The demo account `make run` seeds: one active demo token at a time.

(That the seed's background work reaches the worker is shown by tests/test_run_local.py.)"""

import re

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from elbia.accounts.models import ApiToken, Membership

pytestmark = pytest.mark.django_db


def seed(capsys) -> str:
    """Run seed_demo as `make seed` does; the access token it prints."""
    call_command("seed_demo")
    return re.search(r"Access token:  (elb_at_\S+)", capsys.readouterr().out).group(1)


def regions(token: str) -> int:
    return APIClient().get("/v1/regions", HTTP_AUTHORIZATION=f"Bearer {token}").status_code


def test_each_run_keeps_one_active_demo_token(capsys):
    first = seed(capsys)
    second = seed(capsys)
    third = seed(capsys)
    assert [regions(token) for token in (first, second, third)] == [401, 401, 200]
    demo_tokens = ApiToken.objects.filter(name="Demo token")
    assert demo_tokens.count() == 3
    assert [token.status for token in demo_tokens] == ["active", "revoked", "revoked"]  # newest first
    assert [token.revoked_reason for token in demo_tokens] == ["", "replaced", "replaced"]


def test_other_tokens_of_the_demo_user_are_left_alone(capsys, issue_token):
    seed(capsys)
    laptop = ApiToken.objects.get(name="Demo token").user
    kept = issue_token(laptop, name="laptop")
    seed(capsys)
    assert regions(kept.access_token) == 200


def test_the_demo_account_has_an_owner_and_a_developer(capsys):
    seed(capsys)
    seed(capsys)
    members = Membership.objects.filter(account__users__username="demo").order_by("role")
    assert [(m.user.username, m.role) for m in members] == [("demo-developer", "developer"), ("demo", "owner")]
