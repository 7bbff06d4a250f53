"""/v1/functions (list, create, retrieve, update, delete) and the runtime catalog /v1/runtimes."""

from dataclasses import asdict

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from elbia.api.idempotency import idempotent
from elbia.api.ids import is_public_id
from elbia.api.views import AccountScopedViewSet
from functions import services
from functions.api.serializers import (
    FunctionCreateSerializer,
    FunctionSerializer,
    FunctionUpdateSerializer,
    RuntimeSerializer,
)
from functions.filtersets import LIST_PARAMETERS, function_list_params
from functions.models import Function
from functions.runtimes import RUNTIMES
from functions.selectors import function_list


class RuntimeListView(APIView):
    """The runtimes functions can use: name, AWS identifier, handler format (with a pattern) and deprecation."""

    read_scope = "functions:read"

    @extend_schema(summary="List runtimes", responses=RuntimeSerializer(many=True))
    def get(self, request):
        return Response([asdict(runtime) for runtime in RUNTIMES.values()])


@extend_schema_view(
    list=extend_schema(
        summary="List functions",
        parameters=[OpenApiParameter(name, str, description=text) for name, text in LIST_PARAMETERS],
    ),
    create=extend_schema(
        summary="Deploy a new function", request=FunctionCreateSerializer, responses={201: FunctionSerializer}
    ),
    retrieve=extend_schema(summary="Retrieve a function"),
    partial_update=extend_schema(
        summary="Change a function's configuration (redeploys), replace its tags, or deprecate it",
        request=FunctionUpdateSerializer,
        responses={200: FunctionSerializer},
    ),
    destroy=extend_schema(summary="Delete a function and its resource", responses={202: FunctionSerializer}),
)
class FunctionViewSet(AccountScopedViewSet):
    """Serverless functions of the token's account."""

    queryset = Function.objects.all()
    serializer_class = FunctionSerializer
    read_scope = "functions:read"
    write_scope = "functions:write"
    audit_object = "function"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return super().get_queryset().select_related("resource")

    def get_object(self) -> Function:
        if not is_public_id(self.kwargs[self.lookup_url_kwarg], Function.PUBLIC_ID_PREFIX):
            raise NotFound()  # malformed: no need to ask the database
        return super().get_object()

    def render(self, function: Function, status_code: int = status.HTTP_200_OK, headers=None) -> Response:
        return Response(self.get_serializer(function).data, status=status_code, headers=headers)

    def list(self, request):
        functions = function_list(account=self.account, **function_list_params(request.query_params))
        page = self.paginate_queryset(functions)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, id: str):
        return self.render(self.get_object())

    @idempotent
    def create(self, request):
        serializer = FunctionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        function = services.function_create(account=self.account, **serializer.validated_data)
        location = request.build_absolute_uri(reverse("function-detail", kwargs={"id": function.public_id}))
        return self.render(function, status.HTTP_201_CREATED, headers={"Location": location})

    def partial_update(self, request, id: str):
        function = self.get_object()
        serializer = FunctionUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self.render(services.function_update(function=function, **serializer.validated_data))

    def destroy(self, request, id: str):
        function = services.function_delete(function=self.get_object())
        return self.render(function, status.HTTP_202_ACCEPTED)
