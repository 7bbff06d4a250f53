"""Input and output shapes of /v1/resources (input and output differ, so they are separate serializers)."""

from datetime import UTC, datetime

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from elbia.api.fields import StrictCharField
from resources.models import Resource, ResourceType
from resources.validators import (
    validate_cidr_block,
    validate_instance_type,
    validate_region,
    validate_resource_name,
    validate_tags,
    validate_vpc_name,
)

UNKNOWN_FIELD = "Unknown field."


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not declare (a typo such as ``instanceType`` is a 400, not silently ignored)."""

    #: Fields that exist on the object but may not be sent here, with the message to give.
    refused_fields: dict[str, str] = {}

    def validate(self, attrs):
        initial = self.initial_data if isinstance(self.initial_data, dict) else {}
        errors = {}
        for name in initial:
            if name not in self.fields:
                errors[name] = [self.refused_fields.get(name, UNKNOWN_FIELD)]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class TagsField(serializers.JSONField):
    """A JSON object of string keys to string values (see resources.validators.validate_tags)."""

    def __init__(self, **kwargs):
        super().__init__(validators=[validate_tags], **kwargs)


class ResourceCreateSerializer(StrictSerializer):
    """``POST /v1/resources``: a compute instance by default, a VPC with ``type: "vpc"``."""

    COMPUTE_ONLY = ("instance_type", "vpc")
    VPC_ONLY = ("cidr_block",)

    type = serializers.ChoiceField(choices=[ResourceType.COMPUTE, ResourceType.VPC], default=ResourceType.COMPUTE)
    region = StrictCharField(max_length=64, validators=[validate_region])
    instance_type = StrictCharField(max_length=64, required=False, validators=[validate_instance_type])
    vpc = StrictCharField(max_length=100, required=False, help_text="A VPC name, its RES_ ID, or 'default'.")
    name = StrictCharField(max_length=100, required=False, allow_blank=True, trim_whitespace=False)
    cidr_block = StrictCharField(max_length=18, required=False, validators=[validate_cidr_block])
    tags = TagsField(required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict) and data.get("type") == ResourceType.FUNCTION:
            raise serializers.ValidationError({"type": ["Function resources are created by POST /v1/functions."]})
        return super().to_internal_value(data)

    def validate(self, attrs):
        attrs = super().validate(attrs)
        errors = {}
        if attrs["type"] == ResourceType.VPC:
            for name in self.COMPUTE_ONLY:
                if name in attrs:
                    errors[name] = ["Not allowed for a VPC."]
            if not attrs.get("name"):
                errors["name"] = ["This field is required."]
            else:
                self._collect(errors, "name", validate_vpc_name, attrs["name"])
        else:
            for name in self.VPC_ONLY:
                if name in attrs:
                    errors[name] = ["Only allowed for a VPC."]
            for name in self.COMPUTE_ONLY:
                if name not in attrs:
                    errors[name] = ["This field is required."]
            if "name" in attrs:
                self._collect(errors, "name", validate_resource_name, attrs["name"])
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    @staticmethod
    def _collect(errors: dict, field: str, validate, value) -> None:
        try:
            validate(value)
        except DjangoValidationError as error:
            errors[field] = error.messages


class ResourceUpdateSerializer(StrictSerializer):
    """``PATCH /v1/resources/{id}``: only ``name`` and ``tags`` can change (tags are replaced as a whole)."""

    refused_fields = {
        name: "This field cannot be changed."
        for name in (
            "id",
            "type",
            "region",
            "status",
            "instance_type",
            "vpc",
            "memory",
            "cidr_block",
            "created_at",
            "updated_at",
            "provisioning_started_at",
            "provisioned_at",
            "last_execution",
            "failure_reason",
        )
    }

    name = StrictCharField(max_length=100, allow_blank=True, trim_whitespace=False, required=False)
    tags = TagsField(required=False)


class FunctionSummarySerializer(serializers.Serializer):
    """The function behind a ``type=function`` resource, as ``expand=function`` nests it.

    A deliberately small shape; the functions API's own serializer can replace it
    (``ResourceSerializer.function_serializer_class``) without touching anything else.
    """

    id = serializers.CharField(source="public_id")
    name = serializers.CharField()
    runtime = serializers.CharField()
    handler = serializers.CharField()
    status = serializers.CharField()
    memory = serializers.SerializerMethodField()
    timeout = serializers.IntegerField(source="timeout_s")
    region = serializers.CharField()
    tags = serializers.JSONField()

    def get_memory(self, function) -> str:
        return f"{function.memory_mb}MB"


def _time(value: datetime | None) -> str | None:
    """RFC 3339 UTC with a ``Z``, as REST_FRAMEWORK["DATETIME_FORMAT"] renders every other time."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


class ResourceSerializer(serializers.ModelSerializer):
    """The resource object of API.md. ``context["expand"]`` nests ``vpc`` and adds ``function``.

    The declared fields describe the object (for the OpenAPI schema); ``to_representation``
    builds it directly, because DRF's per-field machinery costs more than the database
    on a page of 200 objects (and far more with a nested serializer per row).
    """

    function_serializer_class = FunctionSummarySerializer

    id = serializers.CharField(source="public_id", read_only=True)
    name = serializers.CharField(allow_null=True)
    instance_type = serializers.CharField(allow_null=True)
    vpc = serializers.SerializerMethodField()
    memory = serializers.CharField(allow_null=True, help_text='e.g. "1024MB"; null for VPCs.')
    failure_reason = serializers.CharField(allow_null=True)

    class Meta:
        model = Resource
        fields = [
            "id",
            "type",
            "name",
            "region",
            "status",
            "instance_type",
            "vpc",
            "memory",
            "tags",
            "created_at",
            "updated_at",
            "provisioning_started_at",
            "provisioned_at",
            "last_execution",
            "failure_reason",
        ]
        read_only_fields = fields

    def to_representation(self, resource: Resource) -> dict:
        expand = self.context.get("expand", ())
        data = self.represent(resource, expand_vpc="vpc" in expand)
        if "function" in expand:
            function = getattr(resource, "function", None) if resource.type == ResourceType.FUNCTION else None
            data["function"] = self.function_serializer_class(function).data if function is not None else None
        return data

    @classmethod
    def represent(cls, resource: Resource, *, expand_vpc: bool = False) -> dict:
        vpc = None
        if resource.vpc_id is not None:
            vpc = cls.represent(resource.vpc) if expand_vpc else resource.vpc.public_id
        return {
            "id": resource.public_id,
            "type": resource.type,
            "name": resource.name or None,
            "region": resource.region,
            "status": resource.status,
            "instance_type": resource.instance_type or None,
            "vpc": vpc,
            "memory": resource.memory,
            "tags": resource.tags,
            "created_at": _time(resource.created_at),
            "updated_at": _time(resource.updated_at),
            "provisioning_started_at": _time(resource.provisioning_started_at),
            "provisioned_at": _time(resource.provisioned_at),
            "last_execution": _time(resource.last_execution),
            "failure_reason": resource.failure_reason or None,
        }

    @extend_schema_field(
        {
            "oneOf": [{"type": "string", "example": "RES_1234567890"}, {"type": "object"}],
            "nullable": True,
            "description": "The VPC's ID, or with expand=vpc the VPC object; null for VPCs and functions.",
        }
    )
    def get_vpc(self, resource):  # schema only: to_representation builds the value
        return None


class RegionSerializer(serializers.Serializer):
    """One entry of ``GET /v1/regions``."""

    code = serializers.CharField(help_text="AWS region code, e.g. us-east-1.")
    name = serializers.CharField()


class InstanceTypeSerializer(serializers.Serializer):
    """One entry of ``GET /v1/instance-types``."""

    name = serializers.CharField(help_text="e.g. t2.micro")
    family = serializers.CharField(help_text="t2, t3, m5 or c5")
    vcpus = serializers.IntegerField()
    memory_mb = serializers.IntegerField()
