"""The audit trail end to end: real API and dashboard writes record who, what, from where, under which request."""

import uuid

import pytest

from elbia.accounts.models import ApiToken
from elbia.audit.models import ActorType, AuditEvent
from resources.models import Resource

pytestmark = pytest.mark.django_db


def test_a_resource_created_then_deleted_through_the_api(api, user):
    created = api.post(
        "/v1/resources",
        {"region": "us-east-1", "instance_type": "t2.micro", "vpc": "default", "name": "web-1"},
        format="json",
        HTTP_X_REQUEST_ID="create-1",
    )
    assert created.status_code == 201
    public_id = created.json()["id"]
    Resource.objects.filter(public_id=public_id).update(status="active")
    assert api.delete(f"/v1/resources/{public_id}", HTTP_X_REQUEST_ID="delete-1").status_code == 202

    create, delete = AuditEvent.objects.filter(object_id=public_id).order_by("id")
    assert (create.action, create.request_id, create.changed_fields) == (
        "resource.create",
        "create-1",
        ["instance_type", "name", "region", "vpc"],
    )
    assert (delete.action, delete.request_id, delete.changed_fields) == ("resource.delete", "delete-1", [])
    for event in (create, delete):
        assert (event.actor_type, event.actor_user, event.account) == (ActorType.TOKEN, user, user.account)
        assert event.ip_address == "127.0.0.1"


def test_a_generated_request_id_is_recorded_as_sent_back(api):
    body = {"region": "us-east-1", "instance_type": "t2.micro", "vpc": "default"}
    response = api.post("/v1/resources", body, format="json")
    assert response.status_code == 201
    assert AuditEvent.objects.get().request_id == response["X-Request-ID"]


def test_a_refused_api_write_is_not_recorded(api):
    assert api.post("/v1/resources", {"region": "atlantis"}, format="json").status_code == 400
    assert not AuditEvent.objects.exists()


def test_dashboard_token_generation_and_revocation(client, user):
    client.force_login(user)
    response = client.post(
        "/settings/tokens/new/",
        {"name": "ci", "scopes": ["resources:read"], "form_id": str(uuid.uuid4())},
        HTTP_X_REQUEST_ID="dash-1",
    )
    assert response.status_code == 201
    token = ApiToken.objects.get(name="ci")
    client.post(f"/settings/tokens/{token.pk}/revoke/", {"confirmed": "yes"})
    created, revoked = AuditEvent.objects.order_by("id")
    assert (created.action, created.object_id, created.request_id) == ("apitoken.create", str(token.pk), "dash-1")
    assert (revoked.action, revoked.changed_fields) == ("apitoken.revoke", ["revoked_at", "revoked_reason"])
    for event in (created, revoked):
        assert (event.actor_type, event.actor_user, event.account) == (ActorType.USER, user, user.account)
    assert "elb_" not in str(list(AuditEvent.objects.values()))  # no secret in the trail


def test_dashboard_sign_up(client):
    response = client.post(
        "/signup/",
        {
            "account_name": "Acme Rockets",
            "username": "wile",
            "email": "wile@example.com",
            "password1": "a-long-unusual-password",
            "password2": "a-long-unusual-password",
        },
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.actor_type) == ("account.create", "wile", ActorType.USER)
    assert event.account.name == "Acme Rockets"
    assert event.object_id == str(event.account.pk)
