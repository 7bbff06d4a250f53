"""Lifecycle metrics: rows by status at scrape time (fixed query count), step durations, failures, requeues."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from elbia.models import OutboxMessage
from functions.models import FunctionStatus
from resources.models import Resource, ResourceStatus
from resources.tasks import deprovision_resource, provision_resource, reap_stuck_resources
from tests.functions.factories import FunctionFactory
from tests.observability.scrape import TOKEN, scrape, value
from tests.resources.factories import ComputeFactory, VpcFactory
from tests.resources.providers import CountingProvider

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.ELBIA_METRICS_TOKEN = TOKEN
    settings.ELBIA_PROVIDER = "tests.resources.providers.CountingProvider"
    CountingProvider.calls.clear()


def test_rows_by_status_are_counted_at_scrape_time_in_a_fixed_number_of_queries(client, account, other_user):
    def scrape_counting_queries():
        with CaptureQueriesContext(connection) as queries:
            samples = scrape(client)
        return samples, len(queries)

    empty, queries_when_empty = scrape_counting_queries()
    assert value(empty, "elbia_resources", status="pending", type="compute") == 0  # reported, not missing
    assert value(empty, "elbia_outbox_unsent") == 0
    assert value(empty, "elbia_outbox_oldest_unsent_age_seconds") == 0

    vpc = VpcFactory(account=account)
    for _ in range(3):
        ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.PENDING)
    ComputeFactory(account=other_user.account, status=ResourceStatus.FAILED)
    ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.DELETED)
    FunctionFactory(account=account, status=FunctionStatus.DEPLOYING)
    OutboxMessage.objects.create(task_name="x", created_at=timezone.now() - timedelta(seconds=90))
    OutboxMessage.objects.create(task_name="x", sent_at=timezone.now() - timedelta(seconds=300))

    samples, queries = scrape_counting_queries()
    assert queries == queries_when_empty == 3  # resources, functions, outbox: one grouped query each
    assert value(samples, "elbia_resources", status="pending", type="compute") == 3
    assert value(samples, "elbia_resources", status="failed", type="compute") == 1
    assert value(samples, "elbia_resources", status="active", type="vpc") == 2  # one per account
    assert ("elbia_resources", frozenset({("status", "deleted"), ("type", "compute")})) not in samples
    assert value(samples, "elbia_functions", status="deploying") == 1
    assert value(samples, "elbia_outbox_unsent") == 1
    assert 90 <= value(samples, "elbia_outbox_oldest_unsent_age_seconds") < 120


def test_step_durations_failures_and_requeues(client, account, settings):
    vpc = VpcFactory(account=account)
    started = timezone.now() - timedelta(seconds=7)
    pending = ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.PENDING, provisioned_at=None)
    Resource.objects.filter(pk=pending.pk).update(provisioning_started_at=started)
    deleting = ComputeFactory(account=account, vpc=vpc)
    Resource.objects.filter(pk=deleting.pk).update(
        status=ResourceStatus.DELETING, deleting_started_at=timezone.now() - timedelta(seconds=3)
    )
    refused = ComputeFactory(account=account, vpc=vpc, status=ResourceStatus.PENDING, tags={"simulate": "fail"})
    stuck = ComputeFactory(account=account, vpc=vpc)
    settings.ELBIA_STUCK_AFTER, settings.ELBIA_STUCK_REQUEUES = 60, 1
    before = scrape(client)

    assert provision_resource.apply(args=[pending.pk]).get() == "done"
    assert deprovision_resource.apply(args=[deleting.pk]).get() == "done"
    assert provision_resource.apply(args=[refused.pk]).get() == "failed"
    for expected in ({"requeued": 1, "failed": 0}, {"requeued": 0, "failed": 1}):
        Resource.objects.filter(pk=stuck.pk).update(
            status=ResourceStatus.PROVISIONING, updated_at=timezone.now() - timedelta(seconds=61)
        )
        assert reap_stuck_resources.apply().get() == expected
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    provisioning = {"kind": "resource", "step": "provisioning"}
    assert delta("elbia_lifecycle_duration_seconds_count", **provisioning) == 1
    assert 7 <= delta("elbia_lifecycle_duration_seconds_sum", **provisioning) < 30
    assert delta("elbia_lifecycle_duration_seconds_bucket", **provisioning, le="5.0") == 0
    assert delta("elbia_lifecycle_duration_seconds_bucket", **provisioning, le="10.0") == 1
    deletion = {"kind": "resource", "step": "deletion"}
    assert delta("elbia_lifecycle_duration_seconds_count", **deletion) == 1
    assert 3 <= delta("elbia_lifecycle_duration_seconds_sum", **deletion) < 30
    assert delta("elbia_lifecycle_failures_total", **provisioning, reason="provider") == 1
    assert delta("elbia_lifecycle_failures_total", **provisioning, reason="stuck") == 1
    assert delta("elbia_lifecycle_requeues_total", **provisioning) == 1


def test_an_unexpected_error_is_an_internal_failure(client, account, settings):
    settings.ELBIA_PROVIDER = "tests.resources.providers.BrokenProvider"
    pending = ComputeFactory(account=account, status=ResourceStatus.PENDING, provisioned_at=None)
    labels = {"kind": "resource", "step": "provisioning", "reason": "internal"}
    before = value(scrape(client), "elbia_lifecycle_failures_total", **labels)
    provision_resource.apply(args=[pending.pk])
    assert value(scrape(client), "elbia_lifecycle_failures_total", **labels) - before == 1
