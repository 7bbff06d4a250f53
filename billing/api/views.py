"""/v1 usage and billing: metering ingestion, the month's usage and cost, invoices."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api.serializers import (
    InvoiceDetailSerializer,
    InvoiceSerializer,
    UsageEventBatchSerializer,
    UsageRecordResultSerializer,
    UsageSerializer,
)
from billing.models import Invoice, InvoiceStatus
from billing.periods import current_month, parse_month
from billing.selectors import PriceMissing, invoice_list, usage_for_month
from billing.services import usage_record_events
from elbia.api.exceptions import InvalidParameter
from elbia.api.ids import is_public_id
from elbia.api.schema import ErrorSerializer
from elbia.api.views import AccountScopedViewSet, parse_choice

INVOICE_ORDERINGS = {
    "-period": ("-period", "-id"),
    "period": ("period", "id"),
    "-created_at": ("-created_at", "-id"),
    "created_at": ("created_at", "id"),
}


class PricingUnavailable(APIException):
    """The price book has no price for some usage of the month (staff must add it)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "pricing_unavailable"
    default_detail = "Prices for this period are not available yet."


class UsageEventsView(APIView):
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
    def post(self, request):
        serializer = UsageEventBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            result = usage_record_events(account=request.auth.account, events=serializer.validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        return Response({"accepted": result.accepted, "duplicates": result.duplicates}, status=status.HTTP_200_OK)


class UsageView(APIView):
    """The account's usage and cost for a month."""

    read_scope = "billing:read"
    write_scope = "billing:read"

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
            503: OpenApiResponse(ErrorSerializer, description="No price applies to some usage of the month"),
        },
        summary="Monthly usage summary",
    )
    def get(self, request):
        month = current_month()
        raw = request.query_params.get("month")
        if raw is not None:
            try:
                month = parse_month(raw)
            except ValueError:
                raise InvalidParameter("Parameter 'month' must be a month as YYYY-MM, e.g. 2025-01.") from None
            if month > current_month():
                raise InvalidParameter("Parameter 'month' must not be a future month.")
        try:
            usage = usage_for_month(account=request.auth.account, month=month)
        except PriceMissing as exc:
            raise PricingUnavailable(str(exc)) from None
        return Response(UsageSerializer(usage).data)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", OpenApiTypes.STR, enum=InvoiceStatus.values),
            OpenApiParameter("ordering", OpenApiTypes.STR, enum=list(INVOICE_ORDERINGS), description="default -period"),
        ]
    )
)
class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """The account's invoices, newest month first; one with its line items."""

    queryset = Invoice.objects.all()
    serializer_class = InvoiceSerializer
    read_scope = "billing:read"
    write_scope = "billing:read"

    def get_queryset(self):
        queryset = invoice_list(account=self.account)
        if self.action == "retrieve":
            return queryset.prefetch_related("lines")
        invoice_status = parse_choice(self.request.query_params, "status", tuple(InvoiceStatus.values))
        if invoice_status:
            queryset = queryset.filter(status=invoice_status)
        ordering = parse_choice(self.request.query_params, "ordering", tuple(INVOICE_ORDERINGS), default="-period")
        return queryset.order_by(*INVOICE_ORDERINGS[ordering])

    def get_serializer_class(self):
        return InvoiceDetailSerializer if self.action == "retrieve" else InvoiceSerializer

    def get_object(self):
        if not is_public_id(self.kwargs["id"], Invoice.PUBLIC_ID_PREFIX):
            raise NotFound()
        return super().get_object()
