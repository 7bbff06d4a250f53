"""A lean list page (resources.selectors.lean_page) answers what the full one does, from fewer columns."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from resources.api.serializers import ResourceSerializer
from resources.selectors import lean_page, resource_list
from tests.factories import ResourceFactory

pytestmark = pytest.mark.django_db


def test_a_lean_page_is_the_same_page_in_one_narrower_query(account):
    vpc = ResourceFactory(account=account, type="vpc", name="default", instance_type="")
    for n in range(5):
        ResourceFactory(account=account, vpc=vpc, tags={"n": n})
    ordered = resource_list(account=account).order_by("-created_at", "-id")
    full = list(ordered.select_related("vpc")[:50])

    with CaptureQueriesContext(connection) as queries:
        lean = list(lean_page(ordered)[:50])
        data = ResourceSerializer(lean, many=True).data

    assert data == ResourceSerializer(full, many=True).data
    assert len(queries) == 1  # no query per row for the VPC, nor for a deferred column
    assert "cidr_block" not in queries[0]["sql"] and "lifecycle_task_id" not in queries[0]["sql"]
