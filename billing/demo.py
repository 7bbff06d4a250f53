"""Sample billing data for the demo account: executions last month and this month, and last month's invoice."""

import random
from datetime import UTC, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from billing.models import Invoice, UsageEvent
from billing.periods import current_month, format_month, month_bounds, previous_month
from billing.services import invoice_ensure_pdf, invoice_generate_for_month
from elbia.accounts.models import Account
from functions.executions import function_record_executions
from functions.models import Function, FunctionStatus
from resources.models import Resource, ResourceStatus, ResourceType

EVENTS_PER_MONTH = 400


@transaction.atomic
def seed_billing_demo(*, account: Account) -> Invoice:
    """Meter some executions of the account's functions and invoice last month (running it again adds nothing)."""
    now = timezone.now()
    functions = list(Function.objects.for_account(account).exclude(status=FunctionStatus.DELETED)[:3])
    if not functions:
        functions = [_demo_function(account, now)]
    this_month = current_month(now)
    rows = []
    for month in (previous_month(this_month), this_month):
        start, end = month_bounds(month)
        span = (min(end, now) - start).total_seconds()
        chance = random.Random(format_month(month))  # the same sample every run: resent events are duplicates
        for n in range(EVENTS_PER_MONTH):
            function = functions[n % len(functions)]
            rows.append(
                UsageEvent(
                    account=account,
                    function=function,
                    event_id=f"demo-{format_month(month)}-{n:04d}",
                    timestamp=start + timedelta(seconds=span * chance.random()),
                    duration_ms=chance.randint(20, 3000),
                    memory_mb=function.memory_mb,
                )
            )
    UsageEvent.objects.bulk_create(rows, ignore_conflicts=True)
    latest = {}
    for row in rows:
        latest[row.function_id] = max(latest.get(row.function_id, row.timestamp), row.timestamp)
    function_record_executions(account=account, last_executed=latest)
    invoice = invoice_generate_for_month(account=account, month=previous_month(this_month), now=now)
    return invoice_ensure_pdf(invoice_id=invoice.id)


def _demo_function(account: Account, now: datetime) -> Function:
    """A function to meter when the account has none yet."""
    created = datetime.combine(previous_month(current_month(now)), time.min, tzinfo=UTC)
    resource = Resource(
        account=account,
        type=ResourceType.FUNCTION,
        name="image-resizer",
        region="us-east-1",
        memory_mb=512,
        status=ResourceStatus.ACTIVE,
        created_at=created,
        provisioned_at=created,
    )
    resource.save()
    function = Function(
        account=account,
        resource=resource,
        name="image-resizer",
        runtime="Python 3.12",
        handler="app.handler",
        memory_mb=512,
        status=FunctionStatus.ACTIVE,
        created_at=created,
        deployment_started=created,
        deployed_at=created,
    )
    function.save()
    return function
