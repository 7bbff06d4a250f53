"""Test-only /v1 endpoints for the rate-limit and idempotency plumbing, plus every real route.

Use with ``@pytest.mark.urls("tests.api.probe_views")``; ``tests.api.server_settings``
serves the same URLconf from a real gunicorn.
"""

import time

from django.urls import path
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from elbia.api.idempotency import idempotent
from elbia.api.views import ApiView, ApiViewSet, CreateMixin
from elbia.errors import Conflict
from elbia.urls import handler404, handler500
from elbia.urls import urlpatterns as elbia_urlpatterns
from resources.filtersets import ResourceFilterSet
from resources.models import Resource
from resources.selectors import resource_list

# Failures the next probe request should show, e.g. FAILURES.append("crash") (in-process tests only).
FAILURES: list[str] = []


class ProbeInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    region = serializers.ChoiceField(choices=["us-east-1", "eu-west-1"], default="us-east-1")
    hold = serializers.FloatField(min_value=0, max_value=5, default=0, help_text="Seconds to stay in flight.")


def probe_output(resource: Resource) -> dict:
    return {"id": resource.public_id, "name": resource.name, "region": resource.region, "status": resource.status}


class ProbeCreateView(ApiView):
    """Creates a real Resource row, like POST /v1/resources will; opts in with @idempotent."""

    read_scope = "resources:read"
    write_scope = "resources:write"

    @idempotent
    def post(self, request):
        data = ProbeInput(data=request.data)
        data.is_valid(raise_exception=True)
        resource = Resource.objects.create(
            account=request.auth.account,
            name=data.validated_data["name"],
            region=data.validated_data["region"],
            instance_type="t2.micro",
        )
        time.sleep(data.validated_data["hold"])
        if FAILURES:
            failure = FAILURES.pop()
            if failure == "crash":
                raise RuntimeError("the provider is down")
        if resource.name == "taken":
            raise Conflict("A resource named 'taken' already exists.")
        location = f"/v1/resources/{resource.public_id}"
        return Response(probe_output(resource), status=201, headers={"Location": location})


class ProbeResourceSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="public_id", read_only=True)

    class Meta:
        model = Resource
        fields = ["id", "name", "region", "status"]
        read_only_fields = ["status"]


def probe_resource_create(*, account, name: str, region: str = "us-east-1") -> Resource:
    return Resource.objects.create(account=account, name=name, region=region, instance_type="t2.micro")


class ProbeResourceViewSet(CreateMixin, ApiViewSet):
    """A declarative viewset: its create is idempotent through CreateMixin."""

    selector = staticmethod(resource_list)
    filterset_class = ResourceFilterSet
    serializer_class = ProbeResourceSerializer
    create_serializer_class = ProbeResourceSerializer
    create_service = staticmethod(probe_resource_create)
    read_scope = "resources:read"
    write_scope = "resources:write"


class ProbeMissingView(ApiView):
    """A DRF view answering 404, as an unknown object ID does."""

    read_scope = "resources:read"

    def get(self, request):
        raise NotFound()


router = SimpleRouter(trailing_slash=False)
router.register("v1/probe/items", ProbeResourceViewSet, basename="probe-item")

urlpatterns = [
    path("v1/probe/resources", ProbeCreateView.as_view()),
    path("v1/probe/missing", ProbeMissingView.as_view()),
    *router.urls,
    *elbia_urlpatterns,
]

__all__ = ["handler404", "handler500", "urlpatterns"]
