"""/v1/functions (list, create, retrieve, update, delete) and the runtime catalog /v1/runtimes."""

from dataclasses import asdict

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.response import Response

from elbia.api.schema import conflict
from elbia.api.views import ApiView, ApiViewSet, CreateMixin, DestroyMixin, UpdateMixin
from functions import services
from functions.api.serializers import (
    FunctionCreateSerializer,
    FunctionSerializer,
    FunctionUpdateSerializer,
    RuntimeSerializer,
)
from functions.filtersets import FunctionFilterSet
from functions.runtimes import RUNTIMES
from functions.selectors import function_list


class RuntimeListView(ApiView):
    """The runtimes functions can use: name, AWS identifier, handler format (with a pattern) and deprecation."""

    read_scope = "functions:read"

    @extend_schema(summary="List runtimes", responses=RuntimeSerializer(many=True))
    def get(self, request):
        return Response([asdict(runtime) for runtime in RUNTIMES.values()])


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
class FunctionViewSet(CreateMixin, UpdateMixin, DestroyMixin, ApiViewSet):
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
