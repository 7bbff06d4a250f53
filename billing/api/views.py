"""/v1 usage and billing: metering ingestion, the month's usage and cost, invoices."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.response import Response

from billing.api.serializers import (
    InvoiceDetailSerializer,
    InvoiceSerializer,
    UsageEventBatchSerializer,
    UsageRecordResultSerializer,
    UsageSerializer,
)
from billing.filtersets import InvoiceFilterSet
from billing.periods import FutureMonth, current_month, parse_past_month
from billing.selectors import invoice_list, usage_for_month
from billing.services import usage_record_events
from elbia.api.exceptions import InvalidParameter
from elbia.api.idempotency import idempotent
from elbia.api.schema import unavailable
from elbia.api.views import ApiView, ApiViewSet
from elbia.observability import metrics


class UsageEventsView(ApiView):
    """Metering ingestion for service accounts."""

    read_scope = "usage:write"
    write_scope = "usage:write"

    @extend_schema(
        request=UsageEventBatchSerializer,
        responses={200: UsageRecordResultSerializer},
        summary="Record function executions",
        description=(
            "A batch of 1 to 1,000 execution records. Each `event_id` counts once per account, forever: "
            "a resent event is a duplicate. One invalid event refuses the whole batch (400, details keyed "
            "`events[i].field`) and nothing of it is stored."
        ),
    )
    @idempotent
    def post(self, request):
        serializer = UsageEventBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = usage_record_events(account=self.account, events=serializer.validated_data)
        metrics.usage_events.labels("accepted").inc(result.accepted)
        metrics.usage_events.labels("duplicate").inc(result.duplicates)
        return Response({"accepted": result.accepted, "duplicates": result.duplicates})


class UsageView(ApiView):
    """The account's usage and cost for a month."""

    read_scope = "billing:read"
    write_scope = "billing:read"
    query_parameters = ("month",)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "month",
                OpenApiTypes.STR,
                pattern=r"^(?:[2-9][0-9]{3})-(?:0[1-9]|1[0-2])$",
                description="YYYY-MM (UTC) from 2000-01, default the current month; not in the future.",
            )
        ],
        responses={
            200: UsageSerializer,
            503: unavailable("No price for gb_second applies to 2025-01.", code="pricing_unavailable"),
        },
        summary="Monthly usage summary",
    )
    def get(self, request):
        raw = request.query_params.get("month")
        try:
            month = current_month() if raw is None else parse_past_month(raw)
        except FutureMonth:
            raise InvalidParameter("Parameter 'month' must not be a future month.") from None
        except ValueError:
            raise InvalidParameter("Parameter 'month' must be a month as YYYY-MM, e.g. 2025-01.") from None
        return Response(UsageSerializer(usage_for_month(account=self.account, month=month)).data)


@extend_schema_view(
    list=extend_schema(summary="List invoices"),
    retrieve=extend_schema(summary="Retrieve an invoice with its line items", responses=InvoiceDetailSerializer),
)
class InvoiceViewSet(ApiViewSet):
    """The account's invoices, newest month first; one with its line items."""

    selector = staticmethod(invoice_list)
    filterset_class = InvoiceFilterSet
    serializer_class = InvoiceSerializer
    detail_serializer_class = InvoiceDetailSerializer
    read_scope = "billing:read"
    write_scope = "billing:read"
