"""/v1/resources (list, create, retrieve, update, delete) and the catalogs /v1/regions and /v1/instance-types."""

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema, extend_schema_view
from rest_framework.response import Response

from elbia.api.schema import conflict
from elbia.api.views import ApiView, ApiViewSet, CreateMixin, DestroyMixin, Expansion, UpdateMixin
from resources import services
from resources.api.serializers import (
    ComputeCreateSerializer,
    InstanceTypeSerializer,
    RegionSerializer,
    ResourceCreateSerializer,
    ResourceSerializer,
    ResourceUpdateSerializer,
    VpcCreateSerializer,
)
from resources.catalog import INSTANCE_TYPES, REGIONS
from resources.filtersets import ResourceFilterSet
from resources.selectors import lean_page, resource_list


class RegionListView(ApiView):
    """The AWS region codes resources and functions can run in."""

    read_scope = "resources:read"

    @extend_schema(summary="List regions", responses=RegionSerializer(many=True))
    def get(self, request):
        return Response([{"code": region.code, "name": region.name} for region in REGIONS.values()])


class InstanceTypeListView(ApiView):
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
    list=extend_schema(summary="List resources"),
    create=extend_schema(
        summary="Create a compute instance or a VPC",
        request=PolymorphicProxySerializer(
            component_name="ResourceCreate",
            serializers=[ComputeCreateSerializer, VpcCreateSerializer],
            resource_type_field_name=None,
        ),
        responses={201: ResourceSerializer, 409: conflict("A VPC named 'my-vpc' already exists in us-east-1.")},
    ),
    retrieve=extend_schema(summary="Retrieve a resource"),
    partial_update=extend_schema(
        summary="Rename a resource or replace its tags",
        responses={
            200: ResourceSerializer,
            409: conflict("Resource RES_1234567890 is deleted.", "A VPC named 'my-vpc' already exists in us-east-1."),
        },
    ),
    destroy=extend_schema(
        summary="Delete a resource",
        responses={
            202: ResourceSerializer,
            409: conflict(
                "Resource RES_1234567890 is already deleting.",
                "Resource RES_1234567890 is already deleted.",
                "Resource RES_1234567890 is still provisioning; delete it once it is active or failed.",
                "Resource RES_1234567890 runs a function; delete the function instead.",
                "VPC RES_1234567890 is still used by 2 live resource(s).",
            ),
        },
    ),
)
class ResourceViewSet(CreateMixin, UpdateMixin, DestroyMixin, ApiViewSet):
    """Compute instances, function compute and VPCs of the token's account."""

    selector = staticmethod(resource_list)
    filterset_class = ResourceFilterSet
    serializer_class = ResourceSerializer
    create_serializer_class = ResourceCreateSerializer
    update_serializer_class = ResourceUpdateSerializer
    create_service = staticmethod(services.resource_or_vpc_create)
    update_service = staticmethod(services.resource_update)
    delete_service = staticmethod(services.resource_delete)
    related = ("vpc",)
    lean_list = staticmethod(lean_page)
    expansions = {
        "vpc": Expansion(scope="resources:read", related="vpc", description="replaces the VPC's ID by the VPC object"),
        "function": Expansion(
            scope="functions:read",
            related="function",
            description="adds the function a `type=function` resource runs (null for other types)",
        ),
    }
    read_scope = "resources:read"
    write_scope = "resources:write"
