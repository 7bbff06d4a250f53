"""Billing: the price book, metered function executions, their daily rollups, and monthly invoices with their lines.

The rollups (``FunctionUsageDay``, ``ComputeUsageDay``, ``OpenComputeSpans``, ``OpenComputeSpan``,
``MeteringClose``) are what /v1/usage, the dashboard and the invoice job read; ``billing.rollups``
keeps them exact in the same transaction as the rows they summarize, and ``reconcile_usage``
recomputes them from the raw rows.
"""

from datetime import UTC, date

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import TruncDate
from django.dispatch import Signal
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


#: Sent inside the writing transaction with ``rows``: (account id, function id, timestamp, duration_ms,
#: memory_mb) of usage events just stored (``billing.signals`` adds them to the daily rollups).
usage_events_stored = Signal()
#: Sent inside the writing transaction with ``days``: the (account id, UTC day) pairs whose events changed
#: in a way only a recount can follow (``billing.signals`` recomputes those days' rollups).
usage_days_changed = Signal()


def event_row(event) -> tuple:
    """(account id, function id, timestamp, duration_ms, memory_mb) of a usage event."""
    return event.account_id, event.function_id, event.timestamp, event.duration_ms, event.memory_mb


def event_days(events) -> set[tuple[int, date]]:
    """The (account id, UTC day) pairs some usage events fall on."""
    return {(event.account_id, event.timestamp.astimezone(UTC).date()) for event in events}


class UsageEventQuerySet(AccountScopedQuerySet):
    """Bulk writes of usage events keep the daily rollups exact (``billing.rollups``)."""

    def days(self) -> set[tuple[int, date]]:
        """The (account id, UTC day) pairs these events fall on: one query."""
        days = self.order_by().annotate(day=TruncDate("timestamp", tzinfo=UTC)).values_list("account_id", "day")
        return set(days.distinct())

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        with transaction.atomic(using=self.db):
            created = super().bulk_create(objs, *args, **kwargs)
            if kwargs.get("ignore_conflicts") or kwargs.get("update_conflicts"):
                # Which rows went in is unknown: recount their days.
                usage_days_changed.send(sender=UsageEvent, days=event_days(objs))
            else:
                usage_events_stored.send(sender=UsageEvent, rows=[event_row(obj) for obj in objs])
        return created

    def delete(self):
        with transaction.atomic(using=self.db):
            days = self.days()
            result = super().delete()
            usage_days_changed.send(sender=UsageEvent, days=days)
        return result

    def update(self, **kwargs):
        with transaction.atomic(using=self.db):
            days = self.days()
            result = super().update(**kwargs)
            usage_days_changed.send(sender=UsageEvent, days=days | self.days())
        return result


class UsageEvent(models.Model):
    """One function execution reported by the data plane, counted once per ``event_id`` and account, forever.

    Events are never changed once stored; every way of storing or removing them (``save``,
    ``delete``, the queryset's ``bulk_create``, ``delete`` and ``update``, and the ingestion service)
    keeps ``FunctionUsageDay`` exact in the same transaction.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="usage_events")
    # Billing records outlive a function's deletion (functions are soft-deleted); never cascade them away.
    function = models.ForeignKey(Function, on_delete=models.PROTECT, related_name="usage_events")
    event_id = models.CharField(max_length=128)
    timestamp = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    memory_mb = models.PositiveIntegerField()
    received_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = UsageEventQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "event_id"], name="usage_event_unique_id")]
        indexes = [models.Index(fields=["account", "timestamp"], name="usage_event_account_time")]

    def __str__(self) -> str:
        return self.event_id

    def save(self, *args, **kwargs):
        adding = self._state.adding
        with transaction.atomic():
            days = set() if adding else UsageEvent.objects.filter(pk=self.pk).days()
            super().save(*args, **kwargs)
            if adding:
                usage_events_stored.send(sender=UsageEvent, rows=[event_row(self)])
            else:
                usage_days_changed.send(sender=UsageEvent, days=days | event_days([self]))

    def delete(self, *args, **kwargs):
        with transaction.atomic():
            result = super().delete(*args, **kwargs)
            usage_days_changed.send(sender=UsageEvent, days=event_days([self]))
        return result


class FunctionUsageDay(models.Model):
    """The executions of one function on one UTC day: the exact sums of its stored usage events.

    ``mb_ms`` is the sum of ``duration_ms * memory_mb`` (exact integer units: 1,024,000 make a
    GB-second); ``duration_ms`` the sum of billed milliseconds.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    executions = models.PositiveBigIntegerField(default=0)
    mb_ms = models.PositiveBigIntegerField(default=0)
    duration_ms = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "day", "function"], name="function_usage_day_unique")]

    def __str__(self) -> str:
        return f"{self.function_id} on {self.day}: {self.executions}"


class ComputeUsageDay(models.Model):
    """Billed seconds of an account's compute instances of one type on one UTC day.

    Rows hold every day of a closed active span (a span shorter than the minimum is billed the
    minimum, on the day it began) and, for spans still open, the days before ``MeteringClose.through``.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    instance_type = models.CharField(max_length=32)
    day = models.DateField()
    seconds = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "day", "instance_type"], name="compute_usage_day_unique")
        ]

    def __str__(self) -> str:
        return f"{self.instance_type} on {self.day}: {self.seconds} s"


class OpenComputeSpans(models.Model):
    """How many open active spans of an account's instances of one type are metered up to the daily close.

    Each adds the seconds from ``MeteringClose.through`` to now.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    instance_type = models.CharField(max_length=32)
    spans = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "instance_type"], name="open_compute_spans_unique")]

    def __str__(self) -> str:
        return f"{self.instance_type}: {self.spans}"


class OpenComputeSpan(models.Model):
    """An open active span no daily close has metered yet (it began after it, or less than a minute before)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    resource_id = models.BigIntegerField(unique=True, help_text="The resource (no constraint: rows outlive it).")
    instance_type = models.CharField(max_length=32)
    provisioned_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.resource_id} since {self.provisioned_at}"


class MeteringClose(models.Model):
    """The single row saying up to which midnight (UTC) open compute spans are in ``ComputeUsageDay``."""

    through = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"metered through {self.through}"


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
