"""Input and output shapes of /v1/usage/events, /v1/usage and /v1/billing/invoices."""

from datetime import datetime

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.links import invoice_pdf_url
from billing.models import Invoice, InvoiceLine
from billing.periods import format_month
from billing.selectors import Usage, UsageLine
from billing.services import BATCH_SIZE_ERROR, MAX_EVENTS_PER_BATCH, UsageEventInput, event_error_key
from elbia.api.ids import is_public_id
from elbia.api.serializers import UNKNOWN_FIELD, field_label, parse_rfc3339
from functions.validators import MEMORY_MB, TIMEOUT_S

MAX_EVENT_ID_LENGTH = 128
MAX_DURATION_MS = TIMEOUT_S[1] * 1000  # the longest a function may run
MIN_MEMORY_MB, MAX_MEMORY_MB = MEMORY_MB
_EVENT_FIELDS = frozenset({"event_id", "function", "timestamp", "duration_ms", "memory_mb"})


class UsageEventSerializer(serializers.Serializer):
    """One function execution record (documents the shape; ``UsageEventBatchSerializer`` parses it)."""

    event_id = serializers.CharField(
        max_length=MAX_EVENT_ID_LENGTH, help_text="The sender's id for the execution: counted once per account, ever."
    )
    function = serializers.CharField(help_text="The FUNC_ id of a function of this account.")
    timestamp = serializers.DateTimeField(
        help_text="RFC 3339 with Z or an offset; at most 5 minutes ahead, not before the previous month (UTC)."
    )
    duration_ms = serializers.IntegerField(min_value=0, max_value=MAX_DURATION_MS)
    memory_mb = serializers.IntegerField(
        min_value=MIN_MEMORY_MB,
        max_value=MAX_MEMORY_MB,
        required=False,
        allow_null=True,
        help_text="Memory the execution ran with; defaults to the function's.",
    )


class UsageEventBatchSerializer(serializers.Serializer):
    """``{"events": [...]}``: 1 to 1,000 execution records.

    The fields are declared for the API schema; ``to_internal_value`` checks the batch by hand
    (about twenty times faster than a DRF field per value, which matters at 1,000 events a
    request) and reports every problem as ``events[i].field``.
    """

    events = UsageEventSerializer(many=True, min_length=1, max_length=MAX_EVENTS_PER_BATCH)

    def to_internal_value(self, data) -> list[UsageEventInput]:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ['Send an object: {"events": [...]}.']})
        errors: dict[str, list[str]] = {field_label(key): [UNKNOWN_FIELD] for key in data if key != "events"}
        events = data.get("events")
        if not isinstance(events, list):
            errors["events"] = ["This field is required." if events is None else "Must be a list of events."]
        elif not 1 <= len(events) <= MAX_EVENTS_PER_BATCH:
            errors["events"] = [BATCH_SIZE_ERROR]
        if errors:
            raise serializers.ValidationError(errors)
        parsed = []
        for index, event in enumerate(events):
            result = _parse_event(event, index, errors)
            if result is not None:
                parsed.append(result)
        if errors:
            raise serializers.ValidationError(errors)
        return parsed


def _parse_event(event, index: int, errors: dict[str, list[str]]) -> UsageEventInput | None:
    if not isinstance(event, dict):
        errors[f"events[{index}]"] = ["Must be an object."]
        return None
    before = len(errors)

    def refuse(field: str, message: str) -> None:
        errors[event_error_key(index, field)] = [message]

    for key in event.keys() - _EVENT_FIELDS:
        refuse(field_label(key), UNKNOWN_FIELD)
    event_id = _text(event, "event_id", refuse, max_length=MAX_EVENT_ID_LENGTH)
    function = _text(event, "function", refuse, max_length=64)
    if function is not None and not is_public_id(function, "FUNC_"):
        refuse("function", f"No function {function!r} in this account.")
    timestamp = _timestamp(event.get("timestamp"), refuse)
    duration_ms = _integer(event, "duration_ms", refuse, minimum=0, maximum=MAX_DURATION_MS, required=True)
    memory_mb = _integer(event, "memory_mb", refuse, minimum=MIN_MEMORY_MB, maximum=MAX_MEMORY_MB, required=False)
    if len(errors) > before:
        return None
    return UsageEventInput(
        event_id=event_id, function=function, timestamp=timestamp, duration_ms=duration_ms, memory_mb=memory_mb
    )


def _text(event: dict, field: str, refuse, *, max_length: int) -> str | None:
    value = event.get(field)
    if value is None:
        refuse(field, "This field is required.")
    elif not isinstance(value, str):
        refuse(field, "Must be a string.")
    elif not 1 <= len(value) <= max_length:
        refuse(field, f"Must be 1 to {max_length} characters.")
    elif "\x00" in value or not value.isprintable():
        refuse(field, "Must not contain NUL or other control characters.")
    else:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            refuse(field, "Must be valid Unicode text.")
            return None
        return value
    return None


def _integer(event: dict, field: str, refuse, *, minimum: int, maximum: int, required: bool) -> int | None:
    value = event.get(field)
    if value is None:
        if required:
            refuse(field, "This field is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        refuse(field, "Must be an integer.")
    elif not minimum <= value <= maximum:
        refuse(field, f"Must be an integer from {minimum:,} to {maximum:,}.")
    else:
        return value
    return None


def _timestamp(value, refuse) -> datetime | None:
    if value is None:
        refuse("timestamp", "This field is required.")
        return None
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)
        except ValueError:
            pass
    refuse("timestamp", "Must be an RFC 3339 date-time with a time zone, e.g. 2025-01-01T00:00:00Z.")
    return None


class UsageRecordResultSerializer(serializers.Serializer):
    """The answer to ``POST /v1/usage/events``."""

    accepted = serializers.IntegerField(help_text="Events stored by this request.")
    duplicates = serializers.IntegerField(help_text="Events already recorded (or repeated in the batch): ignored.")


class UsageLineSerializer(serializers.Serializer):
    """One priced line; the same shape in /v1/usage's breakdown and an invoice's lines."""

    kind = serializers.CharField(help_text="request, gb_second or instance_hour")
    instance_type = serializers.SerializerMethodField()
    description = serializers.CharField()
    quantity = serializers.SerializerMethodField(help_text="Decimal string, rounded to 6 places for display.")
    unit = serializers.CharField()
    unit_price = serializers.SerializerMethodField(help_text="Decimal string, in `currency` per `price_unit`.")
    price_unit = serializers.CharField()
    amount_cents = serializers.IntegerField()
    amount = serializers.CharField(help_text='e.g. "$12.34"')

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_instance_type(self, line: UsageLine | InvoiceLine) -> str | None:
        return line.instance_type or None

    def get_quantity(self, line) -> str:
        return _decimal_text(line.quantity)

    def get_unit_price(self, line) -> str:
        return _decimal_text(line.unit_price)


def _decimal_text(value) -> str:
    """A Decimal as plain digits, without trailing zeros or an exponent: ``Decimal("0.2000")`` -> ``"0.2"``."""
    return format(value.normalize(), "f")


class UsageSerializer(serializers.Serializer):
    """``GET /v1/usage``: the month's executions, GB-hours and cost, for display and exact, with its lines."""

    period = serializers.SerializerMethodField(help_text="YYYY-MM")
    total_executions = serializers.IntegerField()
    gigabytes_hour = serializers.CharField(help_text='Function GB-hours for display, e.g. "42.3 GBh".')
    gigabyte_hours = serializers.SerializerMethodField(help_text="Function GB-hours (6 decimal places).")
    current_month_cost = serializers.CharField(help_text='The month\'s cost, e.g. "$2,345.00".')
    cost_cents = serializers.IntegerField()
    currency = serializers.CharField()
    breakdown = UsageLineSerializer(source="lines", many=True)

    def get_period(self, usage: Usage) -> str:
        return format_month(usage.month)

    @extend_schema_field(serializers.FloatField())
    def get_gigabyte_hours(self, usage: Usage) -> float:
        return round(float(usage.gigabyte_hours), 6)


class InvoiceSerializer(serializers.ModelSerializer):
    """An invoice in ``GET /v1/billing/invoices``, with a freshly signed ``pdf_url``."""

    id = serializers.CharField(source="public_id")
    date = serializers.DateField(help_text="The last day of the billed month (YYYY-MM-DD).")
    period = serializers.SerializerMethodField(help_text="YYYY-MM")
    amount = serializers.CharField(help_text='e.g. "$3,242.50"')
    pdf_url = serializers.SerializerMethodField(help_text="A signed link to the PDF, valid for an hour; no token.")

    class Meta:
        model = Invoice
        fields = ["id", "date", "period", "amount", "amount_cents", "currency", "status", "pdf_url"]

    def get_period(self, invoice: Invoice) -> str:
        return format_month(invoice.period)

    def get_pdf_url(self, invoice: Invoice) -> str:
        return invoice_pdf_url(invoice.public_id, self.context.get("request"))


class InvoiceDetailSerializer(InvoiceSerializer):
    """``GET /v1/billing/invoices/{id}``: the invoice and its line items."""

    lines = UsageLineSerializer(many=True)

    class Meta(InvoiceSerializer.Meta):
        fields = [*InvoiceSerializer.Meta.fields, "lines"]
