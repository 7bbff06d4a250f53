"""The audit trail in the admin: read-only, filtered by action, actor type, date and account, searched by values."""

from datetime import timedelta

import pytest
from django.test import RequestFactory
from django.utils import timezone

from elbia.audit.admin import distinct_values
from elbia.audit.models import AuditEvent
from elbia.audit.services import audit_record
from tests.factories import AccountFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = "/admin/audit/auditevent/"


def record(action: str, *, account=None, object_id: str = "", user=None, request_id: str = "", **fields):
    request = None
    if user is not None or request_id:
        request = RequestFactory().post("/", REMOTE_ADDR="203.0.113.9")
        request.user = user or UserFactory()
        request.request_id = request_id
    event = audit_record(action=action, request=request, account=account, object_id=object_id)
    if fields:
        AuditEvent.objects.filter(pk=event.pk).update(**fields)
    return event


def listed(client, **params) -> str:
    response = client.get(LIST, params)
    assert response.status_code == 200
    return response.content.decode()


def test_the_action_filter_offers_the_recorded_actions(staff_client):
    record("resource.create", object_id="RES_0000000001")
    record("invoice.void", object_id="INV_0000000001")
    record("resource.create", object_id="RES_0000000002")
    assert distinct_values(AuditEvent, "action") == ["invoice.void", "resource.create"]
    page = listed(staff_client)
    assert "?action=invoice.void" in page and "?action=resource.create" in page
    page = listed(staff_client, action="invoice.void")
    assert "INV_0000000001" in page
    assert "RES_0000000001" not in page


def test_no_actions_recorded_yet_offers_none():
    assert distinct_values(AuditEvent, "action") == []


def test_filters_by_actor_type_date_and_account(staff_client):
    account = AccountFactory()
    record("resource.create", object_id="RES_0000000001", account=account)
    record("resource.delete", object_id="RES_0000000002", user=UserFactory(account=None, is_staff=True))
    record("resource.update", object_id="RES_0000000003", created_at=timezone.now() - timedelta(days=40))

    page = listed(staff_client, actor_type="staff")
    assert "RES_0000000002" in page and "RES_0000000001" not in page
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)  # as the filter's links
    page = listed(staff_client, created_at__gte=str(midnight - timedelta(days=7)))
    assert "RES_0000000003" not in page and "RES_0000000001" in page
    page = listed(staff_client, account=account.pk)
    assert "RES_0000000001" in page and "RES_0000000002" not in page


@pytest.mark.parametrize("by", ["object_id", "request_id", "account_name", "username"])
def test_search_by_whole_values(staff_client, by):
    account = AccountFactory(name="Acme Rockets")
    user = UserFactory(username="wile", account=account)
    record("resource.create", object_id="RES_0000000001", account=account, user=user, request_id="req-77")
    record("resource.create", object_id="RES_0000000002", account=AccountFactory(), request_id="req-78")
    term = {"object_id": "RES_0000000001", "request_id": "req-77", "account_name": "acme rockets", "username": "WILE"}
    page = listed(staff_client, q=term[by])
    assert "RES_0000000001" in page
    assert "RES_0000000002" not in page


def test_an_event_page_links_to_its_object_and_request(staff_client):
    event = record("resource.create", object_id="RES_0000000001", user=UserFactory(), request_id="req-77")
    page = staff_client.get(f"{LIST}{event.pk}/change/").content.decode()
    assert "/admin/resources/resource/?q=RES_0000000001" in page
    assert f"{LIST}?q=req-77" in page
    assert f"/admin/accounts/user/{event.actor_user.pk}/change/" in page
    assert "203.0.113.9" in page
    assert 'name="_save"' not in page


def test_nobody_edits_the_trail(staff_client):
    event = record("resource.create", object_id="RES_0000000001")
    assert staff_client.get(f"{LIST}add/").status_code == 403
    assert staff_client.post(f"{LIST}{event.pk}/change/", {"action": "nothing"}).status_code == 403
    assert staff_client.post(f"{LIST}{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.get().action == "resource.create"


def test_the_trail_is_queryable_per_account():
    mine, theirs = AccountFactory(), AccountFactory()
    record("resource.create", account=mine, object_id="RES_0000000001")
    record("resource.create", account=theirs, object_id="RES_0000000002")
    assert list(AuditEvent.objects.for_account(mine).values_list("object_id", flat=True)) == ["RES_0000000001"]
