"""/v1/resources (list, create, retrieve, update, delete) and the catalogs /v1/regions and /v1/instance-types."""

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from elbia.api.idempotency import idempotent
from elbia.api.ids import is_public_id
from elbia.api.schema import ErrorSerializer
from elbia.api.views import AccountScopedViewSet, parse_expand
from resources import services
from resources.api.serializers import (
    InstanceTypeSerializer,
    RegionSerializer,
    ResourceCreateSerializer,
    ResourceSerializer,
    ResourceUpdateSerializer,
)
from resources.catalog import INSTANCE_TYPES, REGIONS
from resources.filtersets import LIST_PARAMETERS, resource_list_params
from resources.models import Resource, ResourceStatus, ResourceType
from resources.selectors import ORDERINGS, resource_list

EXPANDABLE = ("vpc", "function")
LIST_PARAMETER_CHOICES = {
    "type": list(ResourceType.values),
    "region": list(REGIONS),
    "status": list(ResourceStatus.values),
    "ordering": list(ORDERINGS),
}


def conflict(when: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=f"conflict: {when}")


EXPAND_PARAMETER = OpenApiParameter(
    "expand",
    str,
    # Comma-separated names from EXPANDABLE (blanks around names and empty items are ignored).
    pattern=r"^[\s,]*(?:vpc|function)(?:\s*,[\s,]*(?:vpc|function))*[\s,]*$",
    description="Comma-separated: `vpc` replaces the VPC's ID by the VPC object; `function` adds the "
    "function a `type=function` resource runs (null for other types).",
)


class RegionListView(APIView):
    """The AWS region codes resources and functions can run in."""

    read_scope = "resources:read"

    @extend_schema(summary="List regions", responses=RegionSerializer(many=True))
    def get(self, request):
        return Response([{"code": region.code, "name": region.name} for region in REGIONS.values()])


class InstanceTypeListView(APIView):
    """The instance types compute resources can use, with their vCPUs and memory."""

    read_scope = "resources:read"

    @extend_schema(summary="List instance types", responses=InstanceTypeSerializer(many=True))
    def get(self, request):
        return Response(
            [
                {"name": kind.name, "family": kind.family, "vcpus": kind.vcpus, "memory_mb": kind.memory_mb}
                for kind in INSTANCE_TYPES.values()
            ]
        )


@extend_schema_view(
    list=extend_schema(
        summary="List resources",
        parameters=[
            OpenApiParameter(name, str, description=text, enum=LIST_PARAMETER_CHOICES.get(name))
            for name, text in LIST_PARAMETERS
        ]
        + [EXPAND_PARAMETER],
    ),
    create=extend_schema(
        summary="Create a compute instance or a VPC",
        request=ResourceCreateSerializer,
        responses={201: ResourceSerializer, 409: conflict("a VPC with this name already exists in the region")},
    ),
    retrieve=extend_schema(summary="Retrieve a resource", parameters=[EXPAND_PARAMETER]),
    partial_update=extend_schema(
        summary="Rename a resource or replace its tags",
        request=ResourceUpdateSerializer,
        responses={200: ResourceSerializer, 409: conflict("the resource is deleted, or the VPC name is taken")},
    ),
    destroy=extend_schema(
        summary="Delete a resource",
        responses={
            202: ResourceSerializer,
            409: conflict("already deleting or deleted, still provisioning, a VPC still in use, or a function's"),
        },
    ),
)
class ResourceViewSet(AccountScopedViewSet):
    """Compute instances, function compute and VPCs of the token's account."""

    queryset = Resource.objects.all()
    serializer_class = ResourceSerializer
    read_scope = "resources:read"
    write_scope = "resources:write"
    audit_object = "resource"
    lookup_value_regex = "[^/]+"

    def get_queryset(self):
        return self.with_related(super().get_queryset(), self.expand)

    @property
    def expand(self) -> set[str]:
        if not hasattr(self, "_expand"):
            self._expand = (
                parse_expand(self.request.query_params, EXPANDABLE) if self.request.method == "GET" else set()
            )
        return self._expand

    @staticmethod
    def with_related(queryset, expand: set[str]):
        """Everything the serializer reads, in the same query: the VPC always (its ID), the function if expanded."""
        return queryset.select_related("vpc", "function") if "function" in expand else queryset.select_related("vpc")

    def get_object(self) -> Resource:
        if not is_public_id(self.kwargs[self.lookup_url_kwarg], Resource.PUBLIC_ID_PREFIX):
            raise NotFound()  # malformed: no need to ask the database
        return super().get_object()

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "expand": self.expand}

    def render(self, resource: Resource, status_code: int = status.HTTP_200_OK, headers=None) -> Response:
        return Response(self.get_serializer(resource).data, status=status_code, headers=headers)

    def list(self, request):
        resources = resource_list(account=self.account, **resource_list_params(request.query_params))
        page = self.paginate_queryset(self.with_related(resources, self.expand))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, id: str):
        return self.render(self.get_object())

    @idempotent
    def create(self, request):
        serializer = ResourceCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if data.pop("type") == ResourceType.VPC:
            resource = services.vpc_create(account=self.account, **data)
        else:
            resource = services.resource_create(account=self.account, **data)
        location = request.build_absolute_uri(reverse("resource-detail", kwargs={"id": resource.public_id}))
        return self.render(resource, status.HTTP_201_CREATED, headers={"Location": location})

    def partial_update(self, request, id: str):
        resource = self.get_object()
        serializer = ResourceUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self.render(services.resource_update(resource=resource, **serializer.validated_data))

    def destroy(self, request, id: str):
        resource = services.resource_delete(resource=self.get_object())
        return self.render(resource, status.HTTP_202_ACCEPTED)
