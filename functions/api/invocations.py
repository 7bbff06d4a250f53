"""/v1/functions/{id}/invocations: invoke a function (and wait, or queue it), and read its invocations.

The request body is the event, any JSON value (an empty body is ``{}``), at most 6 MB. Invoking needs
the ``functions:invoke`` scope, and so does reading invocations (they hold what the function returned).
"""

import base64

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.response import Response

from elbia.api import headers
from elbia.api.idempotency import idempotent
from elbia.api.ids import is_public_id
from elbia.api.parsers import read_body
from elbia.api.renderers import JSONRenderer
from elbia.api.schema import ErrorSerializer, conflict
from elbia.api.serializers import rfc3339
from elbia.api.views import ApiViewSet
from functions.filtersets import InvocationFilterSet
from functions.invocations import invocation_invoke, invocation_queue
from functions.models import Function, Invocation, InvocationType
from functions.runtime.environments import MAX_EVENT_BYTES
from functions.selectors import function_list, invocation_list

ASYNC = InvocationType.EVENT


class ResultRenderer(JSONRenderer):
    """JSON in which a handler's ``None`` is ``null`` (DRF renders it as an empty body)."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None and (renderer_context or {}).get("response") is not None:
            return b"null"
        return super().render(data, accepted_media_type, renderer_context)


class InvocationSerializer(serializers.ModelSerializer):
    """One invocation: how it was asked for, its status, and once finished its result or error and measures."""

    id = serializers.CharField(source="public_id")
    function = serializers.CharField(source="function.public_id", help_text="The invoked function's id (FUNC_).")
    type = serializers.CharField(source="invocation_type", help_text="`RequestResponse` (waited for) or `Event`.")
    result = serializers.JSONField(allow_null=True, help_text="The handler's return value (succeeded only).")
    error = serializers.JSONField(allow_null=True, help_text="`{errorType, errorMessage, trace}` when it failed.")
    logs = serializers.CharField(source="log_tail", help_text="The last 4 KB of the function's output.")
    cold_start = serializers.BooleanField(source="cold", allow_null=True, help_text="Whether it paid a cold start.")
    created_at = serializers.SerializerMethodField()
    started_at = serializers.SerializerMethodField()
    finished_at = serializers.SerializerMethodField()

    class Meta:
        model = Invocation
        fields = [
            "id", "function", "type", "status", "result", "error", "logs", "duration_ms", "billed_duration_ms",
            "init_duration_ms", "cold_start", "memory_mb", "created_at", "started_at", "finished_at",
        ]  # fmt: skip

    def get_created_at(self, invocation) -> str:
        return rfc3339(invocation.created_at)

    def get_started_at(self, invocation) -> str | None:
        return rfc3339(invocation.started_at) if invocation.started_at else None

    def get_finished_at(self, invocation) -> str | None:
        return rfc3339(invocation.finished_at) if invocation.finished_at else None


class QueuedSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="The invocation's id: GET .../invocations/{id} reads its outcome.")
    status = serializers.CharField(help_text="`queued`.")


def _response_header(name: str, description: str, codes=(200,), kind=OpenApiTypes.STR) -> OpenApiParameter:
    return OpenApiParameter(name, kind, location=OpenApiParameter.HEADER, response=list(codes), description=description)


INVOKE_PARAMETERS = [
    OpenApiParameter(
        headers.INVOCATION_TYPE,
        OpenApiTypes.STR,
        location=OpenApiParameter.HEADER,
        enum=["RequestResponse", "Event"],
        description="`RequestResponse` (the default) waits for the result; `Event` queues the invocation (202).",
    ),
    _response_header(headers.INVOCATION_ID, "The invocation's id (EXEC_...).", codes=(200, 202)),
    _response_header(headers.DURATION_MS, "How long the handler ran, in milliseconds.", kind=OpenApiTypes.NUMBER),
    _response_header(
        headers.BILLED_DURATION_MS, "The duration billed: rounded up to the next millisecond.", kind=OpenApiTypes.INT
    ),
    _response_header(headers.LOG_RESULT, "The last 4 KB of the function's output, base64."),
    _response_header(
        headers.FUNCTION_ERROR, "`Unhandled` when the handler raised, timed out or crashed (the body says how)."
    ),
    _response_header(headers.COLD_START, "`true` when a new execution environment started for it, else `false`."),
    _response_header(
        headers.INIT_DURATION_MS,
        "With a cold start: the environment's start, in milliseconds (not billed).",
        kind=OpenApiTypes.NUMBER,
    ),
]


@extend_schema_view(
    list=extend_schema(summary="List a function's invocations (newest first, kept 7 days)"),
    retrieve=extend_schema(summary="Retrieve an invocation: its status, duration and result"),
)
class InvocationViewSet(ApiViewSet):
    """Invocations of one function of the token's account."""

    selector = staticmethod(invocation_list)
    filterset_class = InvocationFilterSet
    serializer_class = InvocationSerializer
    related = ("function",)
    read_scope = "functions:invoke"
    write_scope = "functions:invoke"

    def get_renderers(self):
        return [ResultRenderer()] if self.action == "create" else super().get_renderers()

    def audit_name(self) -> str:
        return ""  # an invocation's own record is its trail (kept 7 days); auditing every call would double it

    def function(self) -> Function:
        """The function in the path, of the token's account (404 otherwise)."""
        public_id = self.kwargs["function_id"]
        function = None
        if is_public_id(public_id, Function.PUBLIC_ID_PREFIX):
            function = function_list(account=self.account).filter(public_id=public_id).first()
        if function is None:
            raise NotFound()
        return function

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "list":
            return queryset.filter(function=self.function())
        return queryset.filter(function__public_id=self.kwargs["function_id"])

    def list(self, request, function_id: str):
        return super().list(request)

    def retrieve(self, request, function_id: str, id: str):
        return super().retrieve(request, id)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.action == "create":  # the event, read and checked before the idempotency check fingerprints it
            read_body(request, MAX_EVENT_BYTES)
            request.data  # noqa: B018 (parsed: not JSON is a 400)

    @extend_schema(
        summary="Invoke a function",
        description=(
            "The body is the event: any JSON value (an empty body is `{}`), at most 6 MB. By default the "
            "call waits for the function and answers its return value as the body; a handler that raised, "
            "timed out or crashed answers `200` too, with `X-Elbia-Function-Error: Unhandled` and "
            "`{errorType, errorMessage, trace}`. With `X-Elbia-Invocation-Type: Event` the invocation is "
            "queued: `202` with its id. At most `ELBIA_FUNCTION_CONCURRENCY` (10) runs of one function and "
            "`ELBIA_ACCOUNT_CONCURRENCY` (50) of one account at once: beyond, `429` with `Retry-After`."
        ),
        request={"application/json": OpenApiTypes.ANY},
        parameters=INVOKE_PARAMETERS,
        responses={
            200: OpenApiResponse(OpenApiTypes.ANY, description="The handler's return value, or its error"),
            202: QueuedSerializer,
            409: conflict(
                "Function FUNC_1234567890 is deploying: only an active function can be invoked.",
                "Go 1.x functions run only on the AWS provider (ELBIA_PROVIDER=aws); "
                "the local runtime runs Python 3.11 and Node.js 20.",
            ),
            413: OpenApiResponse(ErrorSerializer, description="The event is larger than 6 MB (payload_too_large)"),
            503: OpenApiResponse(ErrorSerializer, description="Nothing could run the function now; retry shortly"),
        },
    )
    @idempotent
    def create(self, request, function_id: str):
        invocation_type = request.headers.get(headers.INVOCATION_TYPE, InvocationType.REQUEST_RESPONSE)
        if invocation_type not in InvocationType.values:
            raise ParseError(f"Header '{headers.INVOCATION_TYPE}' must be RequestResponse or Event.")
        event = request.body if request.body.strip() else b"{}"
        function = self.function()
        if invocation_type == ASYNC:
            invocation = invocation_queue(account=self.account, function=function, event=event)
            return Response(
                {"id": invocation.public_id, "status": invocation.status},
                status=status.HTTP_202_ACCEPTED,
                headers={headers.INVOCATION_ID: invocation.public_id},
            )
        invocation = invocation_invoke(account=self.account, function=function, event=event)
        return Response(
            invocation.result if invocation.error is None else invocation.error,
            headers=invocation_headers(invocation),
        )


def invocation_headers(invocation: Invocation) -> dict[str, str]:
    """What the headers of a synchronous invocation's answer say of it."""
    answer = {
        headers.INVOCATION_ID: invocation.public_id,
        headers.DURATION_MS: f"{invocation.duration_ms:.3f}",
        headers.BILLED_DURATION_MS: str(invocation.billed_duration_ms),
        headers.LOG_RESULT: base64.b64encode(invocation.log_tail.encode()[-4096:]).decode(),
        headers.COLD_START: "true" if invocation.cold else "false",
    }
    if invocation.error is not None:
        answer[headers.FUNCTION_ERROR] = "Unhandled"
    if invocation.cold and invocation.init_duration_ms is not None:
        answer[headers.INIT_DURATION_MS] = f"{invocation.init_duration_ms:.3f}"
    return answer
