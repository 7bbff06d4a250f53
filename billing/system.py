"""Billing's part of the admin's System page: the last invoice runs, by billed month (one query)."""

from django.db.models import Count, Max

from billing.models import Invoice
from billing.periods import format_month
from elbia.observability.system import Section, changelist

#: How many billed months the page shows, the most recent first.
MONTHS_SHOWN = 3


def last_invoice_runs() -> Section:
    months = (
        Invoice.objects.order_by()
        .values("period")
        .annotate(count=Count("id"), last=Max("created_at"))
        .order_by("-period")[:MONTHS_SHOWN]
    )
    return Section(
        title="Last invoice runs",
        columns=["Billed month", "Invoices", "Last created"],
        rows=[
            [
                (format_month(row["period"]), changelist(Invoice, period=format_month(row["period"]))),
                (str(row["count"]), ""),
                (row["last"].strftime("%Y-%m-%d %H:%M:%S"), ""),
            ]
            for row in months
        ],
        empty="No invoice yet.",
    )
