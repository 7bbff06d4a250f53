"""Billing: the price book, metered function executions, and monthly invoices with their lines."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from billing.money import format_cents
from billing.periods import format_month, month_end
from elbia.accounts.models import Account, AccountScopedQuerySet
from elbia.api.ids import PublicIdModel
from functions.models import Function
from resources.catalog import INSTANCE_TYPES


class PriceKind(models.TextChoices):
    """What a price is charged for."""

    REQUEST = "request", "Per 1M function requests"
    GB_SECOND = "gb_second", "Per GB-second of function duration"
    INSTANCE_HOUR = "instance_hour", "Per instance-hour"


class Currency(models.TextChoices):
    """Currencies prices and invoices may be in."""

    USD = "USD", "US dollar"


class Price(models.Model):
    """One entry of the price book: what one unit of a kind of usage costs from a month on.

    For a month, the price that applies to a kind (and instance type) is the one with the
    latest ``effective_from`` on or before that month. Units: ``request`` prices are per
    million requests, ``gb_second`` per GB-second, ``instance_hour`` per hour of one instance.
    """

    kind = models.CharField(max_length=16, choices=PriceKind.choices)
    instance_type = models.CharField(
        max_length=32, blank=True, help_text="Instance-hour prices only: the instance type they apply to."
    )
    unit_price = models.DecimalField(
        max_digits=18, decimal_places=10, help_text="In the currency, per unit of the kind (see the kind's name)."
    )
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.USD)
    effective_from = models.DateField(help_text="The first day of the first month this price applies to.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["kind", "instance_type", "-effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "instance_type", "effective_from"], name="price_unique_from"),
            models.CheckConstraint(condition=models.Q(unit_price__gte=0), name="price_not_negative"),
            models.CheckConstraint(condition=models.Q(effective_from__day=1), name="price_from_first_of_month"),
            models.CheckConstraint(
                condition=(models.Q(kind="instance_hour") & ~models.Q(instance_type=""))
                | (~models.Q(kind="instance_hour") & models.Q(instance_type="")),
                name="price_instance_type_iff_instance_hour",
            ),
        ]

    def __str__(self) -> str:
        what = self.instance_type if self.kind == PriceKind.INSTANCE_HOUR else self.get_kind_display()
        return f"{what}: {self.unit_price} {self.currency} from {format_month(self.effective_from)}"

    def clean(self) -> None:
        errors = {}
        if self.kind == PriceKind.INSTANCE_HOUR:
            if self.instance_type not in INSTANCE_TYPES:
                errors["instance_type"] = ["Choose an instance type from the catalog (e.g. t3.micro)."]
        elif self.instance_type:
            errors["instance_type"] = ["Only instance-hour prices name an instance type."]
        if self.effective_from and self.effective_from.day != 1:
            errors["effective_from"] = ["Prices apply from the first day of a month."]
        if self.unit_price is not None and self.unit_price < 0:
            errors["unit_price"] = ["A price cannot be negative."]
        if errors:
            raise ValidationError(errors)


class UsageEvent(models.Model):
    """One function execution reported by the data plane, counted once per ``event_id`` and account, forever."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="usage_events")
    # Billing records outlive a function's deletion (functions are soft-deleted); never cascade them away.
    function = models.ForeignKey(Function, on_delete=models.PROTECT, related_name="usage_events")
    event_id = models.CharField(max_length=128)
    timestamp = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    received_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "event_id"], name="usage_event_unique_id")]
        indexes = [models.Index(fields=["account", "timestamp"], name="usage_event_account_time")]

    def __str__(self) -> str:
        return self.event_id


def invoice_pdf_path(invoice: "Invoice", filename: str) -> str:
    """Where an invoice's PDF is stored: one folder per billed month."""
    return f"invoices/{format_month(invoice.period)}/{filename}"


class InvoiceStatus(models.TextChoices):
    """An invoice is open until paid or voided; a zero invoice is paid from the start."""

    OPEN = "open"
    PAID = "paid"
    VOID = "void"


class Invoice(PublicIdModel):
    """An account's bill for one closed calendar month (UTC): exactly one per account and month."""

    PUBLIC_ID_PREFIX = "INV_"

    # Invoices are financial records: an account that has any cannot be deleted by accident.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="invoices")
    period = models.DateField(help_text="The first day of the billed month.")
    date = models.DateField(help_text="The invoice date: the last day of the billed month.")
    status = models.CharField(max_length=8, choices=InvoiceStatus.choices, default=InvoiceStatus.OPEN)
    amount_cents = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.USD)
    pdf = models.FileField(upload_to=invoice_pdf_path, blank=True, editable=False)
    pdf_status = models.CharField(
        max_length=8, blank=True, editable=False, help_text="The status the stored PDF shows; re-rendered on change."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    paid_at = models.DateTimeField(null=True, blank=True, editable=False)
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-period", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "period"], name="invoice_unique_account_period"),
            models.CheckConstraint(condition=models.Q(period__day=1), name="invoice_period_first_of_month"),
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({format_month(self.period)})"

    def clean(self) -> None:
        if self.period and self.period.day != 1:
            raise ValidationError({"period": ["An invoice period is the first day of a month."]})
        if self.period and self.date != month_end(self.period):
            raise ValidationError({"date": ["An invoice is dated the last day of its period."]})

    @property
    def amount(self) -> str:
        return format_cents(self.amount_cents)

    @property
    def pdf_is_current(self) -> bool:
        return bool(self.pdf) and self.pdf_status == self.status


class InvoiceLine(models.Model):
    """One line of an invoice, as /v1/usage's breakdown showed it for the month."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=16, choices=PriceKind.choices)
    instance_type = models.CharField(max_length=32, blank=True)
    description = models.CharField(max_length=200)
    quantity = models.DecimalField(max_digits=24, decimal_places=6, help_text="Rounded for display.")
    unit = models.CharField(max_length=32)
    unit_price = models.DecimalField(max_digits=18, decimal_places=10)
    price_unit = models.CharField(max_length=32)
    amount_cents = models.PositiveBigIntegerField()

    class Meta:
        ordering = ["invoice", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice", "position"], name="invoice_line_unique_position")]

    def __str__(self) -> str:
        return self.description

    @property
    def amount(self) -> str:
        return format_cents(self.amount_cents)
