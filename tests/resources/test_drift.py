"""The drift check's database side: which active rows it fails, with what reason, in how many queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from elbia import drift
from resources.models import Resource, ResourceStatus
from resources.tasks import detect_resource_drift
from tests.resources.factories import ComputeFactory
from tests.resources.providers import InventoryProvider

pytestmark = pytest.mark.django_db

GONE = "Drift: its instance was deleted or terminated outside Elbia (the provider no longer reports it)."


@pytest.fixture
def listed(settings):
    settings.ELBIA_PROVIDER = "tests.resources.providers.InventoryProvider"
    InventoryProvider.listed = {}
    return InventoryProvider.listed


def instances(account, count: int, **fields) -> list[Resource]:
    """``count`` active instances, each with a provider id of its own."""
    made = [ComputeFactory(account=account, **fields) for _ in range(count)]
    for resource in made:
        resource.provider_id = f"i-{resource.pk:017x}"
        resource.save(update_fields=["provider_id"])
    return made


def test_gone_and_changed_instances_fail_with_a_reason_and_the_rest_is_left_alone(account, listed):
    healthy, gone, stopped = instances(account, 3)
    listed.update({healthy.provider_id: "", stopped.provider_id: "stopped"})
    listed.update({gone.vpc.provider_id: ""})  # its VPC has none: VPCs without one are not checked
    deleting = ComputeFactory(account=account, status=ResourceStatus.DELETING, provider_id="i-0000000000000dead")
    new = ComputeFactory(
        account=account, provider_id="i-000000000000000ff", provisioned_at=timezone.now() + timedelta(1)
    )
    unknown = ComputeFactory(account=account, provider_id="")  # made by another provider: cannot be checked

    assert detect_resource_drift() == {"compute": 2, "vpc": 0}

    statuses = dict(Resource.objects.values_list("pk", "status"))
    assert statuses[healthy.pk] == statuses[new.pk] == statuses[unknown.pk] == ResourceStatus.ACTIVE
    assert statuses[deleting.pk] == ResourceStatus.DELETING
    gone.refresh_from_db()
    stopped.refresh_from_db()
    assert (gone.status, gone.failure_reason) == (ResourceStatus.FAILED, GONE)
    assert stopped.failure_reason == "Drift: its instance is stopped, a change made outside Elbia."
    assert gone.drifted_at is not None and gone.failed_at is not None
    assert detect_resource_drift() == {"compute": 0, "vpc": 0}


def test_nothing_is_checked_with_a_provider_that_cannot_list(account, settings):
    settings.ELBIA_PROVIDER = "simulated"
    (resource,) = instances(account, 1)
    assert detect_resource_drift() == {"compute": 0, "vpc": 0}
    resource.refresh_from_db()
    assert resource.status == ResourceStatus.ACTIVE


@pytest.mark.parametrize(("rows", "more_pages"), [(1, 0), (10, 0), (25, 2)])
def test_queries_grow_with_pages_not_rows(account, listed, monkeypatch, django_assert_num_queries, rows, more_pages):
    """Per kind and region: the regions, one query per page of BATCH rows (and the empty last one), and one
    UPDATE (in a savepoint) per kind of change found in a page."""
    monkeypatch.setattr(drift, "BATCH", 10)
    for resource in instances(account, rows):
        listed[resource.provider_id] = ""
    gone = instances(account, 2, region="eu-west-1")
    listed[gone[0].provider_id] = "stopped"
    # compute: regions, 2 regions x (1 page + the empty one), 2 changes x (savepoint, UPDATE, release);
    # VPC (none has a provider id here): regions, 2 regions x (the empty page).
    with django_assert_num_queries(1 + 2 * 2 + more_pages + 2 * 3 + 1 + 2):
        assert detect_resource_drift() == {"compute": 2, "vpc": 0}
