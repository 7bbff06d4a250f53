"""Roles in an account: what each role may do on every dashboard page and every /v1 route.

Pages are found from the URL configuration (every ``dashboard_page``); each needs a row in
``elbia.accounts.roles.PAGE_RIGHTS`` and a way to open it here (``PAGES``), else a test fails. /v1 routes
reuse the tenant-isolation matrix (``tests/test_tenant_isolation.CASES``): every route and method, as a
member of each role holding every scope the role allows.
"""

from datetime import date, timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django.utils.html import escape

from billing.services import invoice_generate_for_month
from elbia.accounts.models import Invitation, Membership
from elbia.accounts.roles import PAGE_RIGHTS, ROLE_SCOPES, Role, refusal, role_allows, role_scopes
from elbia.accounts.services import token_issue
from elbia.accounts.token_cache import forget_user_tokens
from resources.models import Resource
from tests import test_tenant_isolation as isolation
from tests.factories import FunctionFactory, UserFactory
from tests.resources.factories import ComputeFactory

pytestmark = pytest.mark.django_db

ROLES = list(Role.values)


def _dashboard_pages(patterns, namespace=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _dashboard_pages(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and getattr(pattern.callback, "dashboard_page", False):
            yield f"{namespace}{pattern.name}"


DASHBOARD_PAGES = sorted(set(_dashboard_pages(get_resolver().url_patterns)))


@pytest.fixture
def team(user):
    """Account A with its owner (``user``), one member of each other role, and objects of every kind."""
    account = user.account
    members = {Role.OWNER: user}
    for role in (Role.DEVELOPER, Role.BILLING, Role.VIEWER):
        member = UserFactory(account=None, username=f"{role}-member")
        Membership.objects.create(user=member, account=account, role=role)
        members[role] = member
    compute = ComputeFactory(account=account)
    function = FunctionFactory(account=account, created_at=timezone.now().replace(year=2020))
    invoice = invoice_generate_for_month(account=account, month=date(2024, 3, 1))
    viewer_membership = Membership.objects.get(user=members[Role.VIEWER])
    invitation = Invitation.objects.create(
        account=account, email="x@example.com", role=Role.VIEWER, expires_at=timezone.now() + timedelta(days=1)
    )
    return {
        "account": account,
        "members": members,
        "viewer_membership": viewer_membership,
        "invitation": invitation,
        "compute": compute,
        "function": function,
        "invoice": invoice,
    }


# How to open each page: (method, URL). POST-only actions are sent without a form (the role is checked first).
PAGES = {
    "dashboard:home": lambda t: ("get", reverse("dashboard:home")),
    "dashboard:switch-account": lambda t: ("post", reverse("dashboard:switch-account")),
    "dashboard:settings": lambda t: ("get", reverse("dashboard:settings")),
    "dashboard:resend-verification": lambda t: ("post", reverse("dashboard:resend-verification")),
    "dashboard:members": lambda t: ("get", reverse("dashboard:members")),
    "dashboard:activity": lambda t: ("get", reverse("dashboard:activity")),
    "dashboard:member-invite": lambda t: ("get", reverse("dashboard:member-invite")),
    "dashboard:invitation-cancel": lambda t: (
        "post",
        reverse("dashboard:invitation-cancel", args=[t["invitation"].pk]),
    ),
    "dashboard:member-role": lambda t: ("post", reverse("dashboard:member-role", args=[t["viewer_membership"].pk])),
    "dashboard:member-remove": lambda t: ("get", reverse("dashboard:member-remove", args=[t["viewer_membership"].pk])),
    "dashboard:tokens": lambda t: ("get", reverse("dashboard:tokens")),
    "dashboard:token-create": lambda t: ("get", reverse("dashboard:token-create")),
    "dashboard:token-revoke": lambda t: ("get", reverse("dashboard:token-revoke", args=[t["own_token"].pk])),
    "resources:list": lambda t: ("get", reverse("resources:list")),
    "resources:detail": lambda t: ("get", reverse("resources:detail", args=[t["compute"].public_id])),
    "resources:lifecycle": lambda t: ("get", reverse("resources:lifecycle", args=[t["compute"].public_id])),
    "resources:create": lambda t: ("get", reverse("resources:create")),
    "resources:create-vpc": lambda t: ("get", reverse("resources:create-vpc")),
    "resources:edit": lambda t: ("get", reverse("resources:edit", args=[t["compute"].public_id])),
    "resources:delete": lambda t: ("get", reverse("resources:delete", args=[t["compute"].public_id])),
    "resources:retry": lambda t: ("post", reverse("resources:retry", args=[t["compute"].public_id])),
    "functions:list": lambda t: ("get", reverse("functions:list")),
    "functions:detail": lambda t: ("get", reverse("functions:detail", args=[t["function"].public_id])),
    "functions:lifecycle": lambda t: ("get", reverse("functions:lifecycle", args=[t["function"].public_id])),
    "functions:create": lambda t: ("get", reverse("functions:create")),
    "functions:edit": lambda t: ("get", reverse("functions:edit", args=[t["function"].public_id])),
    "functions:upload_code": lambda t: ("get", reverse("functions:upload_code", args=[t["function"].public_id])),
    "functions:invoke": lambda t: ("post", reverse("functions:invoke", args=[t["function"].public_id])),
    "functions:deprecate": lambda t: ("get", reverse("functions:deprecate", args=[t["function"].public_id])),
    "functions:delete": lambda t: ("get", reverse("functions:delete", args=[t["function"].public_id])),
    "functions:retry": lambda t: ("post", reverse("functions:retry", args=[t["function"].public_id])),
    "billing:usage": lambda t: ("get", reverse("billing:usage")),
    "billing:invoices": lambda t: ("get", reverse("billing:invoices")),
    "billing:invoice": lambda t: ("get", reverse("billing:invoice", args=[t["invoice"].public_id])),
}


def test_pages_are_discovered():
    assert "resources:list" in DASHBOARD_PAGES and "dashboard:home" in DASHBOARD_PAGES


@pytest.mark.parametrize("page", DASHBOARD_PAGES)
def test_every_page_declares_its_right_and_is_tested(page):
    assert page in PAGE_RIGHTS, f"{page} has no row in elbia.accounts.roles.PAGE_RIGHTS"
    assert page in PAGES, f"{page} has no row in PAGES of {__name__}"


def test_no_stale_rows():
    assert set(PAGE_RIGHTS) == set(DASHBOARD_PAGES), sorted(set(PAGE_RIGHTS) ^ set(DASHBOARD_PAGES))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_by_role(page, role, team, client):
    member = team["members"][role]
    team["own_token"] = token_issue(user=member, account=team["account"], scopes=["resources:read"]).api_token
    client.force_login(member)
    method, url = PAGES[page](team)
    response = getattr(client, method)(url)
    right = PAGE_RIGHTS[page]
    if right is None or role_allows(role, right):
        assert response.status_code != 403, response.content[:300]
        if method == "get":
            assert response.status_code == 200
    else:
        assert response.status_code == 403
        assert escape(refusal(role, right)) in response.content.decode()


@pytest.mark.parametrize("role", [Role.VIEWER, Role.BILLING])
def test_a_refused_action_changes_nothing(role, team, client):
    client.force_login(team["members"][role])
    compute = team["compute"]
    response = client.post(reverse("resources:delete", args=[compute.public_id]), {"confirmed": "yes"})
    assert response.status_code == 403
    compute.refresh_from_db()
    assert compute.status == "active"


def test_navigation_hides_billing_from_roles_without_it(team, client):
    client.force_login(team["members"][Role.DEVELOPER])
    page = client.get(reverse("dashboard:home")).content.decode()
    assert reverse("billing:usage") not in page
    client.force_login(team["members"][Role.BILLING])
    assert reverse("billing:usage") in client.get(reverse("dashboard:home")).content.decode()


# --- /v1: every route and method, per role ---------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("route", isolation.CHECKED, ids=isolation.route_id)
def test_api_route_by_role(route, role, world, make_client):
    """A member's token holding every scope their role allows: the route answers as to the owner, or 403."""
    method, template = route
    case = isolation.case_for(route)
    account = world.owner.account
    member = world.owner if role == Role.OWNER else UserFactory(account=account, role=role)
    client = make_client(member, scopes=role_scopes(role))
    before = isolation.snapshot(account)
    response = isolation.call(client, method, template, case, world)
    if case.scope in ROLE_SCOPES[role]:
        assert response.status_code == case.owner_status, response.content
    else:
        assert response.status_code == 403, response.content
        assert response.json()["error"]["code"] == "insufficient_scope"
        assert f"'{case.scope}'" in response.json()["error"]["message"]
        assert isolation.snapshot(account) == before


def test_a_token_acts_within_its_creators_current_role(user, make_client):
    """Scopes are limited by the role on every request, even if the token's own scopes were not narrowed."""
    client = make_client(user)  # an owner's token with every scope
    assert client.get("/v1/resources").status_code == 200
    Membership.objects.filter(user=user).update(role=Role.VIEWER)
    forget_user_tokens(user.pk)
    response = client.post("/v1/resources", {"region": "us-east-1", "instance_type": "t2.micro"}, format="json")
    assert response.status_code == 403
    error = response.json()["error"]
    assert (error["code"], error["message"]) == (
        "insufficient_scope",
        "This request requires the 'resources:write' scope, which the token's creator's role (viewer) does not allow.",
    )
    assert client.get("/v1/resources").status_code == 200
    assert not Resource.objects.filter(account=user.account).exists()


def test_a_token_of_someone_no_longer_a_member_is_unknown(user, make_client):
    client = make_client(user)
    Membership.objects.filter(user=user).delete()
    forget_user_tokens(user.pk)
    response = client.get("/v1/resources")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid or missing API token"


world = isolation.world
