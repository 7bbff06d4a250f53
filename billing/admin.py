"""Billing in the admin: the price book, usage events (read-only) and invoices with their lines.

- Prices: staff add a price with the month it applies from (history is kept). A price that already
  applies (from this month or earlier) has priced usage and invoices: it can no longer be edited or
  deleted; a later price replaces it from its month on.
- Usage events: the biggest table. Read-only, ordered by id, no date hierarchy (its year/month links
  would scan the table), no total count (``EstimatedCountPaginator``).
- Invoices: amounts and status are never edited by hand. Actions go through the billing services:
  mark paid, void (confirmed first), regenerate the PDF; the "Generate invoices for a month" button
  queues ``generate_invoices_for_month`` (after a confirmation page naming the month).
"""

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.text import capfirst

from billing.links import invoice_pdf_link_path
from billing.models import Invoice, InvoiceLine, InvoiceStatus, Price, UsageEvent
from billing.periods import closed_month, current_month, format_month, parse_month, previous_month
from billing.services import invoice_mark_paid, invoice_render_pdf, invoice_void
from elbia.accounts.models import Account
from elbia.admin import AccountFilter, ElbiaModelAdmin, ReadOnlyAdmin, changelist_url, link, links, service_action
from elbia.api.ids import public_id_pattern
from elbia.audit.services import audit_record
from functions.models import Function

#: How many months back the invoice list's period filter offers.
PERIOD_CHOICES = 12


# --- Prices ------------------------------------------------------------------------------------------


@admin.register(Price)
class PriceAdmin(ElbiaModelAdmin):
    """The price book, which staff edit: a new price applies from its ``effective_from`` month on."""

    list_display = ["kind", "instance_type", "unit_price", "currency", "effective_from", "created_at"]
    list_filter = ["kind", "effective_from", "currency"]
    search_fields = ["instance_type"]
    ordering = ["kind", "instance_type", "-effective_from"]
    date_hierarchy = "effective_from"

    def applies(self, price: Price | None) -> bool:
        """Whether ``price`` already prices some month (then it is history and stays as it is)."""
        return price is not None and price.effective_from <= current_month()

    readonly_fields = ["created_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        return not self.applies(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Per price only (no bulk delete): a price not yet in force may be withdrawn, a past one may not.
        return obj is not None and not self.applies(obj) and super().has_delete_permission(request, obj)


# --- Usage events ------------------------------------------------------------------------------------


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    """Metered function executions, read-only."""

    list_display = ["event_id", "account_link", "function_link", "timestamp", "duration_ms", "memory_mb", "received_at"]
    list_select_related = ["account", "function"]
    list_filter = [AccountFilter, ("timestamp", admin.DateFieldListFilter)]
    search_fields = ["event_id"]
    search_help_text = (
        "A function ID (FUNC_...); an account's exact name; or, on one account's events (open them from "
        "the account's page), an event ID."
    )
    ordering = ["-id"]
    sortable_by = []
    fields = ["event_id", "account_link", "function_link", "timestamp", "duration_ms", "memory_mb", "received_at"]

    @admin.display(description="account")
    def account_link(self, event: UsageEvent) -> str:
        return link(event.account)

    @admin.display(description="function")
    def function_link(self, event: UsageEvent) -> str:
        return link(event.function, event.function.public_id)

    def get_search_results(self, request, queryset, search_term):
        """Only indexed lookups: by function, by account, or by event ID within an account.

        The table's only index on ``event_id`` starts with the account; without an account chosen,
        a term that is not a function ID names an account.
        """
        term = search_term.strip()  # one whole value: account names may hold spaces
        if not term:
            return queryset, False
        if term.startswith(Function.PUBLIC_ID_PREFIX):
            functions = Function.objects.filter(public_id=term).values_list("id", flat=True)
            return queryset.filter(function_id__in=list(functions)), False
        if request.GET.get(AccountFilter.parameter_name) is not None:
            return queryset.filter(event_id=term), False
        accounts = Account.objects.filter(name__iexact=term).values_list("id", flat=True)[:100]
        return queryset.filter(account_id__in=list(accounts)), False


# --- Invoices ----------------------------------------------------------------------------------------


class PeriodFilter(admin.SimpleListFilter):
    """The billed month, among the last ``PERIOD_CHOICES`` closed months (no query to list them)."""

    title = "period"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        month, choices = current_month(), []
        for _ in range(PERIOD_CHOICES):
            month = previous_month(month)
            choices.append((format_month(month), format_month(month)))
        return choices

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        try:
            return queryset.filter(period=parse_month(self.value()))
        except ValueError as exc:
            raise admin.options.IncorrectLookupParameters(exc) from None


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = ["position", "description", "quantity", "unit", "unit_price", "price_unit", "amount"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class MonthForm(forms.Form):
    month = forms.CharField(max_length=7, help_text="A closed month, as YYYY-MM.")

    def clean_month(self) -> date:
        try:
            month = parse_month(self.cleaned_data["month"].strip())
        except ValueError as exc:
            raise forms.ValidationError(f"{capfirst(str(exc))}.") from None
        try:
            return closed_month(month)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """Invoices, read-only; staff mark them paid, void them or render their PDF again through actions."""

    list_display = ["public_id", "account_link", "month", "status", "amount_display", "pdf_state", "created_at"]
    list_select_related = ["account"]
    list_filter = ["status", PeriodFilter, AccountFilter]
    search_fields = ["public_id__exact"]
    search_account_names = True
    search_help_text = "An invoice ID (INV_..., exact), or part of an account's name."
    exact_search = ((public_id_pattern(Invoice.PUBLIC_ID_PREFIX), "public_id"),)
    ordering = ["-id"]
    sortable_by = ["public_id"]
    fields = [
        "public_id",
        "account_link",
        "month",
        "date",
        "status",
        "amount_display",
        "created_at",
        "paid_at",
        "voided_at",
        "pdf_state",
        "pdf_link",
        "related",
    ]
    inlines = [InvoiceLineInline]
    actions = ["mark_paid", "void", "render_pdf"]

    @admin.display(description="account", ordering="account__name")
    def account_link(self, invoice: Invoice) -> str:
        return link(invoice.account)

    @admin.display(description="month", ordering="period")
    def month(self, invoice: Invoice) -> str:
        return format_month(invoice.period)

    @admin.display(description="amount")
    def amount_display(self, invoice: Invoice) -> str:
        return f"{invoice.amount} {invoice.currency}"

    @admin.display(description="PDF")
    def pdf_state(self, invoice: Invoice) -> str:
        if not invoice.pdf:
            return "not rendered yet"
        return "current" if invoice.pdf_is_current else f"shows {invoice.pdf_status}: re-rendering"

    @admin.display(description="PDF link")
    def pdf_link(self, invoice: Invoice) -> str:
        return links([(f"{invoice.public_id}.pdf (signed link)", invoice_pdf_link_path(invoice.public_id))])

    @admin.display(description="see also")
    def related(self, invoice: Invoice) -> str:
        return links(
            [
                ("Audit events of this invoice", changelist_url("audit.auditevent", q=invoice.public_id)),
                ("Invoices of this account", changelist_url(Invoice, account=invoice.account_id)),
            ]
        )

    # --- actions

    @service_action(description="Mark the selected invoices paid", verb="mark_paid", changed_fields=["status"])
    def mark_paid(self, request, invoice: Invoice) -> bool:
        if invoice.status == InvoiceStatus.PAID:
            return False
        invoice_mark_paid(invoice=invoice)
        return True

    @service_action(
        description="Void the selected invoices",
        verb="void",
        changed_fields=["status"],
        confirm="Voided invoices stay on record, marked void, and can no longer be paid; their PDFs are rendered "
        "again to say so. This cannot be undone: an account has one invoice per month. Paid invoices cannot "
        "be voided.",
    )
    def void(self, request, invoice: Invoice) -> bool:
        if invoice.status == InvoiceStatus.VOID:
            return False
        invoice_void(invoice=invoice)
        return True

    @service_action(
        description="Regenerate the PDF of the selected invoices", verb="render_pdf", changed_fields=["pdf"]
    )
    def render_pdf(self, request, invoice: Invoice) -> bool:
        invoice_render_pdf(invoice=invoice)
        return True

    # --- generating a month's invoices

    def get_urls(self):
        generate = path("generate/", self.admin_site.admin_view(self.generate_view), name="billing_invoice_generate")
        return [generate, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_generate": self.has_run_actions_permission(request)}
        return super().changelist_view(request, extra_context)

    def generate_view(self, request):
        """Ask for a closed month, confirm, then queue the creation of its missing invoices."""
        if not (self.has_view_permission(request) and self.has_run_actions_permission(request)):
            raise PermissionDenied
        if request.method == "POST":
            form = MonthForm(request.POST)
            if form.is_valid():
                month = format_month(form.cleaned_data["month"])
                if self.queue_generation(request, month):
                    return HttpResponseRedirect(changelist_url(Invoice, period=month))
        else:
            form = MonthForm(initial={"month": format_month(previous_month(current_month()))})
        context = {
            **self.admin_site.each_context(request),
            "title": "Generate invoices for a month",
            "opts": self.model._meta,
            "form": form,
            "today": timezone.now(),
        }
        return TemplateResponse(request, "admin/billing/invoice/generate.html", context)

    def queue_generation(self, request, month: str) -> bool:
        from billing.tasks import generate_invoices_for_month

        try:
            generate_invoices_for_month.delay(month)
        except Exception as exc:  # the broker is unreachable: say so, change nothing
            self.message_user(
                request,
                f"Could not queue the invoice run ({exc.__class__.__name__}); nothing was done. Try again, or run "
                f"`manage.py generate_invoices --month {month}`.",
                messages.ERROR,
            )
            return False
        audit_record(action="invoice.generate_month", request=request, object_id=month)
        self.message_user(
            request,
            f"Invoice generation for {month} is queued: every account that existed in {month} and has no invoice "
            "for it gets one in the next minutes (refresh this list). Invoices already made stay as they are.",
        )
        return True
