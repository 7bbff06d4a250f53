"""The admin's System page: staff only, what it shows, and a query count that does not grow with the rows."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.services import invoice_generate_for_month
from elbia.celery import app
from elbia.models import OutboxMessage
from functions.models import Function, FunctionStatus
from resources.models import Resource, ResourceStatus
from tests.billing.test_job import create_prices
from tests.functions.factories import FunctionFactory
from tests.resources.factories import ComputeFactory

pytestmark = pytest.mark.django_db

URL = "/admin/system/"


def open_page(client) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL)
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def make_stuck(model, row, status, seconds):
    model.objects.filter(pk=row.pk).update(status=status, updated_at=timezone.now() - timedelta(seconds=seconds))


def test_only_staff_see_it(client, user):
    assert client.get(URL).status_code == 302
    client.force_login(user)
    response = client.get(URL)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_admin_index_links_to_it(staff_client):
    assert f'href="{URL}"' in staff_client.get("/admin/").content.decode()


def test_what_it_shows_and_the_fixed_query_count(staff_client, account, settings):
    settings.ELBIA_STUCK_AFTER = 600
    app.conf.broker_url = settings.CELERY_BROKER_URL
    app.control.purge()
    staff_client.get(URL)  # sessions, content types: cached from now on
    _, queries_when_empty = open_page(staff_client)

    stuck = ComputeFactory(account=account)
    make_stuck(Resource, stuck, ResourceStatus.PROVISIONING, 3600)
    recent = ComputeFactory(account=account)
    make_stuck(Resource, recent, ResourceStatus.PENDING, 60)  # transient, but not for long
    for _ in range(12):
        make_stuck(Resource, ComputeFactory(account=account), ResourceStatus.DELETING, 1800)
    function = FunctionFactory(account=account)
    make_stuck(Function, function, FunctionStatus.DEPLOYING, 1800)
    create_prices()
    account.created_at = timezone.now().replace(year=2024, month=1)
    account.save()
    invoice_generate_for_month(account=account, month=date(2024, 3, 1))
    OutboxMessage.objects.update(sent_at=timezone.now())  # what the rows above queued
    OutboxMessage.objects.create(task_name="x", created_at=timezone.now() - timedelta(minutes=5))
    app.send_task("elbia.tasks.purge_sent_outbox_messages", queue="elbia")

    page, queries = open_page(staff_client)
    app.control.purge()
    assert queries == queries_when_empty
    # The session and its user; readiness (SELECT 1); the outbox; per lifecycle model, counts and stuck rows;
    # the invoice runs.
    assert queries == 9
    assert stuck.public_id in page and function.public_id in page
    assert recent.public_id not in page  # not stuck yet
    assert "And more: the oldest 10 are shown." in page  # 13 stuck resources
    assert f'href="/admin/resources/resource/{stuck.pk}/change/"' in page
    assert 'href="/admin/resources/resource/?status__exact=deleting">12</a>' in page
    assert 'href="/admin/functions/function/?status__exact=deploying">1</a>' in page
    assert "<tr><td>elbia</td><td>1</td></tr>" in page  # the queue
    assert "Messages not yet sent to the broker</th><td>1</td>" in page
    assert 'href="/admin/billing/invoice/?period=2024-03">2024-03</a>' in page
    for dependency in ("database", "cache", "broker"):
        assert f"<tr><td>{dependency}</td><td>ready</td></tr>" in page


def test_a_broker_that_is_down_is_said(staff_client, monkeypatch):
    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    page, _ = open_page(staff_client)
    assert "The broker did not answer" in page
    assert "<td>broker</td><td><strong>unavailable</strong>" in page
