"""/v1/functions (list, create, retrieve, update, delete, code) and the runtime catalog /v1/runtimes."""

from dataclasses import asdict

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.response import Response

from elbia.api.exceptions import UnsupportedBodyType
from elbia.api.parsers import RawBodyParser
from elbia.api.schema import conflict, declared_error
from elbia.api.views import ApiView, ApiViewSet, CreateMixin, DestroyMixin, UpdateMixin
from functions import services
from functions.api.serializers import (
    CodeLinkSerializer,
    FunctionCreateSerializer,
    FunctionSerializer,
    FunctionUpdateSerializer,
    RuntimeSerializer,
)
from functions.code import MAX_ZIPPED_BYTES
from functions.filtersets import FunctionFilterSet
from functions.links import function_code_link
from functions.runtimes import RUNTIMES
from functions.selectors import function_list


class RuntimeListView(ApiView):
    """The runtimes functions can use: name, AWS identifier, handler format (with a pattern) and deprecation."""

    read_scope = "functions:read"

    @extend_schema(summary="List runtimes", responses=RuntimeSerializer(many=True))
    def get(self, request):
        return Response([asdict(runtime) for runtime in RUNTIMES.values()])


ZIP = "application/zip"


WRONG_BODY_TYPE = "Send the ZIP archive as the body with Content-Type: {expected} (got {sent})."


class ZipArchiveParser(RawBodyParser):
    """``PUT /v1/functions/{id}/code``: the body is the ZIP archive, at most 50 MB, filed as the field ``code``."""

    media_type = ZIP
    field = "code"
    max_bytes = MAX_ZIPPED_BYTES


class FunctionCodeActions:
    """``/v1/functions/{id}/code``: a signed download link to the code (GET), new code from a ZIP body (PUT)."""

    @extend_schema(
        summary="Get a signed, expiring link to download the function's code",
        responses={
            200: CodeLinkSerializer,
            409: conflict(
                "Function FUNC_1234567890 has no code yet: upload a ZIP archive with PUT "
                "/v1/functions/FUNC_1234567890/code.",
                "Function FUNC_1234567890 is deleted; its code can no longer be downloaded.",
            ),
        },
    )
    # The route's parsers serve its PUT (a GET has no body to parse).
    @action(detail=True, methods=["get"], url_path="code", parser_classes=[ZipArchiveParser])
    def code(self, request, id: str):
        return Response(CodeLinkSerializer(function_code_link(self.get_object(), request)).data)

    @extend_schema(
        summary="Replace the function's code with a ZIP archive (redeploys)",
        description=(
            "The body is the ZIP archive itself, `Content-Type: application/zip`, at most 52,428,800 bytes "
            "(50 MB). It is checked (a valid ZIP, safe relative paths, at most 10,000 entries and 250 MB "
            "unpacked, the handler's file present) before anything changes: a bad archive is a 400 whose "
            "`details.code` says what is wrong, and the deployed code keeps running. New code is stored by "
            "its sha256 and the function goes back to `deploying`; the same bytes as the current code "
            "change nothing."
        ),
        request={ZIP: OpenApiTypes.BINARY},
        responses={
            200: FunctionSerializer,
            409: conflict(
                "Function FUNC_1234567890 is still deploying; change its code once it is active or failed.",
                "Function FUNC_1234567890 is deprecated; its code can no longer change.",
                "Function FUNC_1234567890 is deleted.",
            ),
            415: declared_error(
                415,
                UnsupportedBodyType.default_code,
                [WRONG_BODY_TYPE.format(expected=ZIP, sent="application/json")],
                "The body is not sent as application/zip",
            ),
        },
    )
    @code.mapping.put
    def upload_code(self, request, id: str):
        function = self.get_object()
        sent = request.content_type.split(";")[0].strip()
        if sent.lower() != ZIP:
            raise UnsupportedBodyType(WRONG_BODY_TYPE.format(expected=ZIP, sent=sent[:100] or "none"))
        return self.render(services.function_update_code(function=function, archive=request.data.get("code", b"")))


@extend_schema_view(
    list=extend_schema(summary="List functions"),
    create=extend_schema(
        summary="Deploy a new function",
        responses={
            201: FunctionSerializer,
            409: conflict("A function named 'my-function' already exists in this account."),
        },
    ),
    retrieve=extend_schema(summary="Retrieve a function"),
    partial_update=extend_schema(
        summary="Change a function's configuration (redeploys), replace its tags, or deprecate it",
        responses={
            200: FunctionSerializer,
            409: conflict(
                "Function FUNC_1234567890 is still deploying; change its configuration once it is active or failed.",
                "Function FUNC_1234567890 is deprecated; its configuration can no longer change.",
                "Only an active function can be deprecated; FUNC_1234567890 is failed.",
                "Function FUNC_1234567890 is deleting.",
                "Function FUNC_1234567890 is deleted.",
            ),
        },
    ),
    destroy=extend_schema(
        summary="Delete a function and its resource",
        responses={
            202: FunctionSerializer,
            409: conflict(
                "Function FUNC_1234567890 is already deleted.",
                "Function FUNC_1234567890 is already deleting.",
                "Function FUNC_1234567890 is still deploying; delete it once it is active or failed.",
                "The resource of function FUNC_1234567890 (RES_1234567890) is still provisioning; "
                "delete the function once it is active or failed.",
            ),
        },
    ),
)
class FunctionViewSet(FunctionCodeActions, CreateMixin, UpdateMixin, DestroyMixin, ApiViewSet):
    """Serverless functions of the token's account."""

    selector = staticmethod(function_list)
    filterset_class = FunctionFilterSet
    serializer_class = FunctionSerializer
    create_serializer_class = FunctionCreateSerializer
    update_serializer_class = FunctionUpdateSerializer
    create_service = staticmethod(services.function_create)
    update_service = staticmethod(services.function_update)
    delete_service = staticmethod(services.function_delete)
    related = ("resource",)
    read_scope = "functions:read"
    write_scope = "functions:write"
