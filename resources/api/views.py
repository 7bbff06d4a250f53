from rest_framework.response import Response
from rest_framework.views import APIView

from resources.catalog import INSTANCE_TYPES, REGIONS


class RegionListView(APIView):
    """The AWS region codes resources and functions can run in."""

    read_scope = "resources:read"

    def get(self, request):
        return Response([{"code": region.code, "name": region.name} for region in REGIONS.values()])


class InstanceTypeListView(APIView):
    """The instance types compute resources can use, with their vCPUs and memory."""

    read_scope = "resources:read"

    def get(self, request):
        return Response(
            [
                {"name": kind.name, "family": kind.family, "vcpus": kind.vcpus, "memory_mb": kind.memory_mb}
                for kind in INSTANCE_TYPES.values()
            ]
        )
