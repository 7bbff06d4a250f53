"""Account Settings > Activity: the account's team events for its owners, paged, by member and action."""

import uuid

import pytest

from elbia.accounts.models import Membership
from elbia.accounts.roles import Role
from elbia.accounts.services import membership_set_role
from elbia.audit.models import AuditEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_owners_see_invitations_role_changes_and_removals(user, signed_in, other_user, client):
    signed_in.post(
        "/settings/members/invite/", {"email": "new@example.com", "role": "viewer", "form_id": str(uuid.uuid4())}
    )
    dev = UserFactory(account=user.account, role=Role.DEVELOPER, username="dev")
    membership = Membership.objects.get(user=dev)
    signed_in.post(f"/settings/members/{membership.pk}/role/", {"role": "billing", "form_id": str(uuid.uuid4())})
    signed_in.post(f"/settings/members/{membership.pk}/remove/", {"confirmed": "yes", "form_id": str(uuid.uuid4())})
    AuditEvent.objects.create(account=other_user.account, actor="x", actor_type="user", action="membership.delete")
    AuditEvent.objects.create(account=user.account, actor="x", actor_type="user", action="resource.create")

    page = signed_in.get("/settings/activity/").content.decode()
    actions = [line.split('"')[1] for line in page.split("<tr data-action=")[1:]]
    assert actions == ["membership.delete", "membership.update", "invitation.create"]  # newest first, team only
    assert '<td data-label="On">new@example.com</td>' in page and '<td data-label="On">dev</td>' in page

    only_updates = signed_in.get("/settings/activity/", {"action": "membership.update"}).content.decode()
    assert only_updates.count("<tr data-action=") == 1
    by_owner = signed_in.get("/settings/activity/", {"member": user.pk}).content.decode()
    assert by_owner.count("<tr data-action=") == 3
    quiet = UserFactory(account=user.account, role=Role.VIEWER)
    by_quiet = signed_in.get("/settings/activity/", {"member": quiet.pk}).content.decode()
    assert "<tr data-action=" not in by_quiet and "Nothing yet with these filters" in by_quiet
    assert signed_in.get("/settings/activity/", {"action": "rm -rf"}).status_code == 400
    assert signed_in.get("/settings/activity/", {"member": "x"}).status_code == 400


def test_only_owners_see_the_activity(user, client):
    client.force_login(UserFactory(account=user.account, role=Role.BILLING))
    assert client.get("/settings/activity/").status_code == 403


@pytest.mark.parametrize("count", [1, 12])
def test_activity_query_count_does_not_grow(user, signed_in, django_assert_num_queries, count):
    for n in range(count):
        member = UserFactory(account=user.account, role=Role.VIEWER, username=f"m{n}")
        membership_set_role(membership=Membership.objects.get(user=member), role=Role.BILLING)
    # The session, the user, their memberships, the members (the filter), the count, the page of events.
    with django_assert_num_queries(6):
        assert signed_in.get("/settings/activity/").status_code == 200
