"""The admin as a whole: who may enter, every list and page with data present, fixed query counts, big tables.

Per-model actions are tested next to their app (tests/<app>/test_admin.py).
"""

import re
from datetime import date

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import UsageEvent
from elbia.accounts.models import SignInAddress, User
from elbia.accounts.services import token_issue
from elbia.admin import EstimatedCountPaginator
from elbia.audit.models import AuditEvent
from elbia.audit.services import audit_record
from tests.factories import (
    FunctionFactory,
    InvoiceFactory,
    PriceFactory,
    ResourceFactory,
    UsageEventFactory,
    UserFactory,
)
from tests.resources.factories import ComputeFactory, VpcFactory

pytestmark = pytest.mark.django_db

ELBIA_APPS = ("accounts", "audit", "resources", "functions", "billing")
# People's records: superusers only (no staff group views them).
USER_MODELS = (User, SignInAddress)

#: Every admin list, and the queries it makes whatever the number of rows: the session, the user, the
#: page's (bounded) count and its rows; plus two for the price book's date hierarchy (first and last
#: date, then the dates to link), one for the user list's group filter, one for the audit list's actions.
CHANGELISTS = {
    "accounts/account": 4,
    "accounts/user": 5,
    "accounts/apitoken": 4,
    "auth/group": 4,
    "oauth2_provider/application": 4,
    "resources/resource": 4,
    "functions/function": 4,
    "billing/price": 6,
    "billing/usageevent": 4,
    "billing/invoice": 4,
    "audit/auditevent": 5,
}

#: The lists an account's page links to, filtered by that account.
ACCOUNT_LISTS = (
    "accounts/user",
    "accounts/apitoken",
    "resources/resource",
    "functions/function",
    "billing/invoice",
    "billing/usageevent",
    "audit/auditevent",
)

#: (list, what staff type, what the found row shows): by public ID, name, email, account name, request ID.
SEARCHES = [
    ("accounts/account", lambda rows: rows["account"].name, lambda rows: rows["account"].name),
    ("accounts/account", lambda rows: str(rows["account"].pk), lambda rows: rows["account"].name),
    ("accounts/account", lambda rows: rows["user"].email, lambda rows: rows["account"].name),
    ("accounts/user", lambda rows: rows["user"].email, lambda rows: rows["user"].username + "<"),
    ("accounts/apitoken", lambda rows: rows["apitoken"].name, lambda rows: rows["apitoken"].name),
    ("accounts/apitoken", lambda rows: rows["account"].name, lambda rows: rows["apitoken"].name),
    ("resources/resource", lambda rows: rows["resource"].public_id, lambda rows: rows["resource"].public_id),
    ("resources/resource", lambda rows: rows["resource"].name, lambda rows: rows["resource"].public_id),
    ("functions/function", lambda rows: rows["function"].public_id, lambda rows: rows["function"].public_id),
    ("functions/function", lambda rows: rows["function"].resource.public_id, lambda rows: rows["function"].name),
    ("billing/invoice", lambda rows: rows["invoice"].public_id, lambda rows: rows["invoice"].public_id),
    ("billing/invoice", lambda rows: rows["account"].name, lambda rows: rows["invoice"].public_id),
    ("billing/usageevent", lambda rows: rows["function"].public_id, lambda rows: rows["usageevent"].event_id + "<"),
    ("billing/usageevent", lambda rows: rows["account"].name, lambda rows: rows["usageevent"].event_id + "<"),
    ("audit/auditevent", lambda rows: rows["resource"].public_id, lambda rows: rows["resource"].public_id),
    ("audit/auditevent", lambda rows: rows["account"].name.upper(), lambda rows: rows["resource"].public_id),
]


def populate(index: int) -> dict:
    """One of everything the admin shows, owned by a new account."""
    user = UserFactory()
    account = user.account
    vpc = VpcFactory(account=account)
    compute = ComputeFactory(account=account, vpc=vpc, status="failed", failure_reason="capacity")
    function = FunctionFactory(account=account)
    return {
        "account": account,
        "user": user,
        "apitoken": token_issue(user=user, scopes=["resources:read"], name=f"laptop-{index}").api_token,
        "vpc": vpc,
        "resource": compute,
        "function": function,
        "usageevent": UsageEventFactory(function=function),
        "invoice": InvoiceFactory(account=account),
        "price": PriceFactory(effective_from=date(2040 + index, 1, 1)),
        "auditevent": audit_record(action="resource.create", account=account, object_id=compute.public_id),
    }


def queries_to_open(client, url: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured), [query["sql"] for query in captured]


class TestWhoEnters:
    def test_a_customer_is_sent_to_the_admin_login(self, client, user):
        client.force_login(user)
        for url in ("/admin/", "/admin/resources/resource/", "/admin/billing/invoice/generate/"):
            response = client.get(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith("/admin/login/")

    def test_a_customer_cannot_sign_in_to_the_admin(self, client, user):
        response = client.post("/admin/login/", {"username": user.username, "password": "correct-horse-battery"})
        assert response.status_code == 200
        assert "staff account" in response.content.decode()
        assert client.get("/admin/").status_code == 302

    def test_staff_made_by_create_account_sign_in_and_see_every_model(self, client):
        call_command(
            "create_account",
            "--staff",
            "--username",
            "ops",
            "--email",
            "ops@example.com",
            "--password",
            "a-long-staff-password",
        )
        response = client.post(
            "/admin/login/?next=/admin/", {"username": "ops", "password": "a-long-staff-password"}, follow=True
        )
        assert response.status_code == 200
        page = response.content.decode()
        for changelist in CHANGELISTS:
            assert f"/admin/{changelist}/" in page

    def test_anonymous_visitors_are_sent_to_the_login(self, client):
        assert client.get("/admin/audit/auditevent/")["Location"].startswith("/admin/login/")


class TestEveryPage:
    def test_every_registered_model_is_covered_here(self):
        registered = {f"{model._meta.app_label}/{model._meta.model_name}" for model in admin.site._registry}
        assert registered == set(CHANGELISTS)

    @pytest.mark.parametrize("changelist", CHANGELISTS)
    def test_a_list_makes_the_same_queries_for_one_row_as_for_many(self, staff_client, changelist):
        populate(0)
        url = f"/admin/{changelist}/"
        staff_client.get(url)  # content types and the like are cached from now on
        one, _ = queries_to_open(staff_client, url)
        for index in range(1, 4):
            populate(index)
        many, sql = queries_to_open(staff_client, url)
        assert one == many == CHANGELISTS[changelist], sql

    def test_the_account_page_links_to_everything_it_owns(self, staff_client):
        mine, theirs = populate(0), populate(1)
        account = mine["account"]
        page = staff_client.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()
        urls = re.findall(rf'href="(/admin/[a-z0-9_]+/[a-z]+/\?account={account.pk})"', page)
        assert {url.split("/")[2] + "/" + url.split("/")[3] for url in urls} == set(ACCOUNT_LISTS)
        for url in urls:
            listed = staff_client.get(url).content.decode()
            assert account.name in listed, url
            assert theirs["account"].name not in listed, url
        assert "resource.create" in page  # its latest audit events
        assert mine["resource"].public_id in page

    @pytest.mark.parametrize(("changelist", "term", "shown"), SEARCHES)
    def test_search_finds_the_row_and_only_it(self, staff_client, changelist, term, shown):
        mine, theirs = populate(0), populate(1)
        page = staff_client.get(f"/admin/{changelist}/", {"q": term(mine)}).content.decode()
        assert shown(mine) in page
        assert shown(theirs) not in page

    def test_every_change_page_opens(self, staff_client):
        rows = populate(0)
        rows["group"] = Group.objects.get(name="support")
        rows["application"] = rows["apitoken"].user.oauth2_provider_accesstoken.get().application
        for name, obj in rows.items():
            url = f"/admin/{obj._meta.app_label}/{obj._meta.model_name}/{obj.pk}/change/"
            response = staff_client.get(url)
            assert response.status_code == 200, (name, url)

    def test_lists_never_count_a_whole_big_table(self, staff_client):
        populate(0)
        for url in ("/admin/billing/usageevent/", "/admin/audit/auditevent/", "/admin/resources/resource/"):
            _, sql = queries_to_open(staff_client, url)
            counts = [query for query in sql if "COUNT(" in query.upper()]
            assert counts and all("LIMIT" in query.upper() for query in counts), counts

    def test_the_account_filter_shows_that_account_only(self, staff_client):
        mine, theirs = ResourceFactory(), ResourceFactory()
        url = "/admin/resources/resource/"
        page = staff_client.get(url, {"account": mine.account_id}).content.decode()
        assert mine.public_id in page and theirs.public_id not in page
        for unknown in (str(theirs.account_id + 1000), "99999999999999999999999"):
            response = staff_client.get(url, {"account": unknown})
            assert response.status_code == 200
            assert mine.public_id not in response.content.decode(), unknown
        for malformed in ("abc", "1\x00"):
            response = staff_client.get(url, {"account": malformed})
            assert response.status_code == 302 and response["Location"].endswith("?e=1"), malformed


class TestEstimatedCount:
    def test_counts_exactly_below_the_limit_and_estimates_past_it(self, monkeypatch):
        populate(0)
        function = FunctionFactory()
        UsageEventFactory.create_batch(40, function=function)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE billing_usageevent")
        queryset = UsageEvent.objects.order_by("-id")
        assert EstimatedCountPaginator(queryset, 10).count == 41
        monkeypatch.setattr(EstimatedCountPaginator, "exact_limit", 10)
        with CaptureQueriesContext(connection) as captured:
            estimated = EstimatedCountPaginator(queryset, 10).count
        assert estimated == 41  # the statistics ANALYZE just gathered
        assert [query["sql"].split()[0] for query in captured] == ["SELECT", "EXPLAIN"]

    def test_a_filtered_list_is_estimated_from_the_filter(self, monkeypatch):
        populate(0)
        other = FunctionFactory()
        UsageEventFactory.create_batch(30, function=other)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE billing_usageevent")
        monkeypatch.setattr(EstimatedCountPaginator, "exact_limit", 5)
        count = EstimatedCountPaginator(UsageEvent.objects.filter(account=other.account).order_by("-id"), 10).count
        assert 6 <= count <= 31


class TestStaffGroups:
    def test_support_may_view_every_elbia_model_but_users(self):
        support = set(Group.objects.get(name="support").permissions.values_list("content_type__app_label", "codename"))
        for app_label in ELBIA_APPS:
            for model in apps.get_app_config(app_label).get_models():
                permission = (app_label, f"view_{model._meta.model_name}")
                assert (permission in support) != (model in USER_MODELS), permission

    def test_staff_groups_see_no_users(self, group_client, user):
        for group in ("support", "operator"):
            staff = group_client(group)
            assert staff.get("/admin/accounts/user/").status_code == 403, group
            assert staff.get(f"/admin/accounts/user/{user.pk}/change/").status_code == 403, group

    def test_operator_may_also_run_actions_and_nothing_else(self):
        operator = Group.objects.get(name="operator").permissions
        support = Group.objects.get(name="support").permissions
        extra = set(operator.values_list("codename", flat=True)) - set(support.values_list("codename", flat=True))
        assert extra == {"run_admin_actions"}
        assert not operator.exclude(codename__startswith="view_").exclude(codename="run_admin_actions").exists()

    def test_support_lists_everything_but_is_offered_no_action(self, group_client):
        populate(0)
        support = group_client("support")
        for changelist in CHANGELISTS:
            response = support.get(f"/admin/{changelist}/")
            if changelist.startswith(("auth/", "oauth2_provider/", "accounts/user")):
                assert response.status_code == 403, changelist  # not Elbia models, or users: not in the group
                continue
            assert response.status_code == 200, changelist
            assert 'name="action"' not in response.content.decode(), changelist

    def test_support_cannot_post_an_action(self, group_client):
        rows = populate(0)
        response = group_client("support").post(
            "/admin/resources/resource/",
            {"action": "retry_provisioning", "_selected_action": [rows["resource"].pk], "index": 0},
        )
        assert response.status_code == 403
        rows["resource"].refresh_from_db()
        assert rows["resource"].status == "failed"

    def test_support_cannot_change_what_it_sees(self, group_client):
        rows = populate(0)
        support = group_client("support")
        page = support.get(f"/admin/accounts/account/{rows['account'].pk}/change/").content.decode()
        assert 'name="_save"' not in page
        response = support.post(f"/admin/accounts/account/{rows['account'].pk}/change/", {"name": "hijacked"})
        assert response.status_code == 403
        rows["account"].refresh_from_db()
        assert rows["account"].name != "hijacked"

    def test_an_operator_is_offered_the_actions(self, group_client):
        populate(0)
        page = group_client("operator").get("/admin/resources/resource/").content.decode()
        assert re.search(r'<option value="retry_provisioning">', page)
        assert re.search(r'<option value="deprovision">', page)

    def test_only_the_custom_permission_runs_actions(self):
        assert Permission.objects.filter(content_type__app_label="audit", codename="run_admin_actions").exists()
        assert not AuditEvent._meta.default_permissions.count("change")
