"""Resources in the admin: retry provisioning and deprovision through the services, each change audited."""

import pytest

from elbia import admin as elbia_admin
from resources.models import ResourceStatus
from tests.admin_actions import messages_of, run_action, staff_events
from tests.factories import FunctionFactory
from tests.resources.factories import ComputeFactory, VpcFactory

pytestmark = pytest.mark.django_db

LIST = "resources/resource"


@pytest.fixture
def failed(account):
    return ComputeFactory(account=account, status=ResourceStatus.FAILED, failure_reason="no capacity")


class TestRetryProvisioning:
    def test_a_failed_resource_is_provisioned_again_and_the_staff_member_recorded(
        self, staff_client, staff_user, failed
    ):
        response = run_action(staff_client, LIST, "retry_provisioning", [failed])
        assert response.status_code == 200
        failed.refresh_from_db()
        assert (failed.status, failed.failure_reason, failed.failed_at) == (ResourceStatus.PENDING, "", None)
        assert any("done for 1" in message for message in messages_of(response))
        event = staff_events("resource.retry_provisioning").get()
        assert (event.object_id, event.account, event.actor_user, event.actor) == (
            failed.public_id,
            failed.account,
            staff_user,
            staff_user.username,
        )
        assert event.changed_fields == ["status"]
        assert event.ip_address == "127.0.0.1"
        assert event.request_id.startswith("req_")

    def test_a_resource_that_has_not_failed_is_refused_with_the_reason(self, staff_client, failed, account):
        active = ComputeFactory(account=account)
        response = run_action(staff_client, LIST, "retry_provisioning", [failed, active])
        active.refresh_from_db()
        assert active.status == ResourceStatus.ACTIVE
        assert any(
            f"refused for {active}: Only failed resources can be retried" in message
            for message in messages_of(response)
        )
        assert list(staff_events("resource.retry_provisioning").values_list("object_id", flat=True)) == [
            failed.public_id
        ]

    def test_an_operator_may_retry(self, group_client, failed):
        run_action(group_client("operator"), LIST, "retry_provisioning", [failed])
        failed.refresh_from_db()
        assert failed.status == ResourceStatus.PENDING


class TestDeprovision:
    def test_asks_for_confirmation_first(self, staff_client, account):
        resource = ComputeFactory(account=account)
        response = run_action(staff_client, LIST, "deprovision", [resource])
        page = response.content.decode()
        assert "Are you sure?" in page
        assert resource.public_id in page
        assert 'name="post" value="yes"' in page
        resource.refresh_from_db()
        assert resource.status == ResourceStatus.ACTIVE
        assert not staff_events("resource.delete").exists()

    def test_once_confirmed_the_resource_is_torn_down(self, staff_client, account):
        resource = ComputeFactory(account=account)
        response = run_action(staff_client, LIST, "deprovision", [resource], confirmed=True)
        assert response.redirect_chain[-1][0] == f"/admin/{LIST}/"
        resource.refresh_from_db()
        assert resource.status == ResourceStatus.DELETING
        assert resource.deleting_started_at is not None
        assert staff_events("resource.delete").get().object_id == resource.public_id

    def test_a_vpc_in_use_and_a_functions_resource_are_refused(self, staff_client, account):
        vpc = VpcFactory(account=account)
        ComputeFactory(account=account, vpc=vpc)
        function = FunctionFactory(account=account)
        response = run_action(staff_client, LIST, "deprovision", [vpc, function.resource], confirmed=True)
        text = " ".join(messages_of(response))
        assert "is still used by 1 live resource(s)" in text
        assert "runs a function; delete the function instead" in text
        vpc.refresh_from_db()
        assert vpc.status == ResourceStatus.ACTIVE
        assert not staff_events("resource.delete").exists()

    def test_an_already_deleting_resource_is_left_alone(self, staff_client, account):
        resource = ComputeFactory(account=account, status=ResourceStatus.DELETING)
        response = run_action(staff_client, LIST, "deprovision", [resource], confirmed=True)
        assert any("nothing to do for 1" in message for message in messages_of(response))
        assert not staff_events("resource.delete").exists()


def test_one_run_is_limited_to_a_page_of_objects(staff_client, account, monkeypatch):
    monkeypatch.setattr(elbia_admin, "MAX_ACTION_OBJECTS", 1)
    resources = ComputeFactory.create_batch(2, account=account, status=ResourceStatus.FAILED)
    response = run_action(staff_client, LIST, "retry_provisioning", resources)
    assert any("Select at most 1 resources" in message for message in messages_of(response))
    assert {resource.status for resource in resources} == {ResourceStatus.FAILED}
    assert not staff_events("resource.retry_provisioning").exists()


def test_nothing_is_edited_by_hand(staff_client, failed):
    url = f"/admin/{LIST}/{failed.pk}/change/"
    page = staff_client.get(url).content.decode()
    assert 'name="_save"' not in page
    assert "no capacity" in page
    assert f"/admin/resources/resource/{failed.vpc.pk}/change/" in page  # its VPC
    assert f"/admin/audit/auditevent/?q={failed.public_id}" in page  # its audit events
    assert staff_client.post(url, {"status": "active"}).status_code == 403
    assert staff_client.get(f"/admin/{LIST}/add/").status_code == 403
    assert staff_client.post(f"/admin/{LIST}/{failed.pk}/delete/", {"post": "yes"}).status_code == 403
    failed.refresh_from_db()
    assert failed.status == ResourceStatus.FAILED


def test_the_list_filters_by_catalog_values(staff_client, account):
    ComputeFactory(account=account, region="eu-west-1", name="in-ireland")
    ComputeFactory(account=account, region="us-east-1", name="in-virginia")
    page = staff_client.get(f"/admin/{LIST}/", {"region": "eu-west-1", "status": "active"}).content.decode()
    assert "in-ireland" in page
    assert "in-virginia" not in page


def test_drifted_resources_are_filtered_shown_and_found_by_their_provider_id(staff_client, account):
    drifted = ComputeFactory(account=account, status=ResourceStatus.FAILED, provider_id="i-0123456789abcdef0")
    drifted.drifted_at = drifted.failed_at = drifted.created_at
    drifted.save()
    steady = ComputeFactory(account=account, provider_id="i-00000000000000001")

    page = staff_client.get(f"/admin/{LIST}/", {"drift": "yes"}).content.decode()
    assert drifted.public_id in page and steady.public_id not in page
    assert "i-0123456789abcdef0" in page  # the provider id column

    page = staff_client.get(f"/admin/{LIST}/", {"q": "i-00000000000000001"}).content.decode()
    assert steady.public_id in page and drifted.public_id not in page
    page = staff_client.get(f"/admin/{LIST}/{drifted.pk}/change/").content.decode()
    assert "i-0123456789abcdef0" in page and "Drifted at" in page
