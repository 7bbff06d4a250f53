"""Service rules the API does not reach directly: the functions app's entry points, retries, concurrency."""

import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from elbia.errors import Conflict
from resources import services
from resources.models import Resource, ResourceStatus, ResourceType
from tests.resources.factories import VpcFactory

pytestmark = pytest.mark.django_db


class TestFunctionResources:
    def test_create_queues_provisioning(self, account, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks() as queued:
            resource = services.resource_create_for_function(
                account=account, region="eu-west-1", memory_mb=1024, name="user-authentication"
            )
        assert (resource.type, resource.status, resource.memory, resource.vpc) == (
            "function",
            "pending",
            "1024MB",
            None,
        )
        assert resource.provisioning_started_at == resource.created_at
        assert [callback.task_name for callback in queued] == ["resources.tasks.provision_resource"]

    @pytest.mark.parametrize(
        ("region", "memory_mb", "field"), [("mars", 128, "region"), ("us-east-1", 64, "memory_mb")]
    )
    def test_invalid(self, account, region, memory_mb, field):
        with pytest.raises(ValidationError) as raised:
            services.resource_create_for_function(account=account, region=region, memory_mb=memory_mb, name="f")
        assert list(raised.value.message_dict) == [field]

    def test_resize_and_delete_through_the_function(self, account, compute):
        resource = services.resource_create_for_function(account=account, region="us-east-1", memory_mb=128, name="f")
        assert services.resource_resize_for_function(resource=resource, memory_mb=2048).memory == "2048MB"
        assert Resource.objects.get(pk=resource.pk).memory_mb == 2048
        with pytest.raises(ValidationError):
            services.resource_resize_for_function(resource=compute, memory_mb=256)
        Resource.objects.filter(pk=resource.pk).update(status=ResourceStatus.ACTIVE)
        assert services.resource_delete(resource=resource, by_function=True).status == ResourceStatus.DELETING

    def test_record_execution_only_moves_forward(self, compute):
        later, earlier = timezone.now(), timezone.now() - timedelta(hours=1)
        services.resource_record_execution(resource_id=compute.pk, executed_at=later)
        services.resource_record_execution(resource_id=compute.pk, executed_at=earlier)
        assert Resource.objects.get(pk=compute.pk).last_execution == later


class TestRetryProvisioning:
    def test_failed_goes_back_to_pending(self, compute, django_capture_on_commit_callbacks):
        Resource.objects.filter(pk=compute.pk).update(
            status=ResourceStatus.FAILED, failure_reason="boom", failed_at=timezone.now(), requeue_count=3
        )
        with django_capture_on_commit_callbacks() as queued:
            resource = services.resource_retry_provisioning(resource=compute)
        assert (resource.status, resource.failure_reason, resource.failed_at, resource.requeue_count) == (
            ResourceStatus.PENDING,
            "",
            None,
            0,
        )
        assert len(queued) == 1

    def test_only_failed_resources(self, compute):
        with pytest.raises(Conflict):
            services.resource_retry_provisioning(resource=compute)


class TestVpcs:
    def test_default_cidr_blocks(self, account):
        assert services.vpc_create(account=account, region="us-east-1", name="default").cidr_block == "172.31.0.0/16"
        assert services.vpc_create(account=account, region="us-east-1", name="app").cidr_block == "10.0.0.0/16"

    def test_a_deleted_vpcs_name_can_be_reused(self, vpc):
        Resource.objects.filter(pk=vpc.pk).update(status=ResourceStatus.DELETED)
        again = services.vpc_create(account=vpc.account, region=vpc.region, name=vpc.name)
        assert again.pk != vpc.pk

    @pytest.mark.parametrize("name", ["bad\x00name", "", "RES_0123456789"])
    def test_invalid_names_are_refused_before_any_query_can_fail(self, account, vpc, name):
        with pytest.raises(ValidationError) as raised:
            services.vpc_create(account=account, region="us-east-1", name=name)
        assert list(raised.value.message_dict) == ["name"]
        with pytest.raises(ValidationError):
            services.resource_update(resource=vpc, name=name)

    def test_rename_to_a_taken_name(self, vpc):
        other = services.vpc_create(account=vpc.account, region=vpc.region, name="other")
        with pytest.raises(Conflict):
            services.resource_update(resource=other, name=vpc.name)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_uses_create_one_default_vpc(account):
    """Eight requests racing to use the region's default VPC for the first time share one VPC."""
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def create() -> None:
        try:
            barrier.wait(timeout=10)
            services.resource_create(account=account, region="ap-south-1", instance_type="t3.nano", vpc="default")
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    vpcs = Resource.objects.filter(account=account, type=ResourceType.VPC)
    assert vpcs.count() == 1
    assert Resource.objects.filter(account=account, vpc=vpcs.get()).count() == 8


@pytest.mark.django_db(transaction=True)
def test_deleting_a_vpc_waits_for_a_creation_in_flight(account):
    """A VPC deletion that races a creation in the VPC sees the new member and refuses (409)."""
    vpc = VpcFactory(account=account, name="net")
    created = threading.Event()
    outcome: dict[str, object] = {}

    def create() -> None:
        try:
            with transaction.atomic():
                services.resource_create(account=account, region=vpc.region, instance_type="t3.nano", vpc="net")
                created.set()
                time.sleep(0.3)  # still uncommitted while the deletion starts
        finally:
            connection.close()

    def delete() -> None:
        try:
            assert created.wait(timeout=10)
            services.resource_delete(resource=vpc)
            outcome["deletion"] = "accepted"
        except Conflict as conflict:
            outcome["deletion"] = str(conflict)
        finally:
            connection.close()

    threads = [threading.Thread(target=create), threading.Thread(target=delete)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcome["deletion"] == f"VPC {vpc.public_id} is still used by 1 live resource(s)."
    assert Resource.objects.get(pk=vpc.pk).status == ResourceStatus.ACTIVE
