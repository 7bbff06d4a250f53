"""The filters of the invoice lists (``GET /v1/billing/invoices`` and the dashboard's Invoices page)."""

import django_filters

from billing.models import Invoice, InvoiceStatus
from elbia.filtersets import ListFilterSet, OrderingFilter, value_choices

ORDERINGS: dict[str, tuple[str, str]] = {
    "-period": ("-period", "-id"),
    "period": ("period", "id"),
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
}
DEFAULT_ORDERING = "-period"


class InvoiceFilterSet(ListFilterSet):
    """Invoices by status, newest month first by default."""

    status = django_filters.ChoiceFilter(
        choices=value_choices(InvoiceStatus.values),
        empty_label="All statuses",
        help_text="Only invoices in this status.",
    )
    ordering = OrderingFilter(ORDERINGS, default=DEFAULT_ORDERING)

    class Meta:
        model = Invoice
        fields = ["status", "ordering"]
