"""Every successful write under /v1 leaves an audit record; recording never breaks the write."""

import pytest
from django.db import DatabaseError
from django.urls import path
from rest_framework.response import Response

from elbia.api.views import ApiView
from elbia.audit.models import ActorType, AuditEvent

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


class WidgetView(ApiView):
    read_scope = "resources:read"
    write_scope = "resources:write"
    audit_object = "widget"

    def post(self, request):
        if request.data.get("fail"):
            return Response({"error": "no"}, status=400)
        return Response({"id": "WID_0000000001", "name": request.data.get("name")}, status=201)


urlpatterns = [path("v1/widgets", WidgetView.as_view())]


def test_write_is_recorded_with_who_what_where(api, user):
    response = api.post("/v1/widgets", {"name": "a", "secret": "s3"}, format="json", HTTP_X_REQUEST_ID="trace-42")
    assert response.status_code == 201
    event = AuditEvent.objects.get()
    assert event.action == "widget.create"
    assert event.object_id == "WID_0000000001"
    assert event.changed_fields == ["name", "secret"]
    assert event.account == user.account
    assert event.actor_type == ActorType.TOKEN
    assert event.actor_user == user
    assert api.issued.api_token.name in event.actor
    assert event.request_id == "trace-42" == response["X-Request-ID"]
    assert event.ip_address == "127.0.0.1"
    assert list(AuditEvent.objects.for_account(user.account)) == [event]


def test_failed_and_read_requests_are_not_recorded(api):
    assert api.post("/v1/widgets", {"fail": True}, format="json").status_code == 400
    assert api.get("/v1/widgets").status_code == 405
    assert not AuditEvent.objects.exists()


def test_a_failing_audit_write_does_not_break_the_request(api, monkeypatch):
    def broken_save(self, *args, **kwargs):
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr(AuditEvent, "save", broken_save)
    assert api.post("/v1/widgets", {"name": "a"}, format="json").status_code == 201
