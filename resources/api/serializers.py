"""Input and output shapes of /v1/resources (input and output differ, so they are separate serializers)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from elbia.api.serializers import StrictCharField, StrictSerializer, rfc3339
from functions.api.serializers import FunctionSerializer
from resources.models import Resource, ResourceType
from resources.validators import (
    VPC_REFERENCE_SCHEMA,
    validate_cidr_block,
    validate_instance_type,
    validate_region,
    validate_resource_name,
    validate_tags,
    validate_vpc_name,
)

# The resource object of API.md, in the order it is rendered.
RESOURCE_FIELDS = [
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
    "provider_id",
]


class TagsField(serializers.JSONField):
    """A JSON object of string keys to string values (see resources.validators.validate_tags)."""

    def __init__(self, **kwargs):
        super().__init__(validators=[validate_tags], **kwargs)


@extend_schema_field(VPC_REFERENCE_SCHEMA)
class VpcReferenceField(StrictCharField):
    """A compute resource's VPC: "default", a VPC's ID or its name (the service resolves it in the region)."""


class ResourceCreateSerializer(StrictSerializer):
    """``POST /v1/resources``: a compute instance by default, a VPC with ``type: "vpc"``."""

    COMPUTE_ONLY = ("instance_type", "vpc")
    VPC_ONLY = ("cidr_block",)

    type = serializers.ChoiceField(choices=[ResourceType.COMPUTE, ResourceType.VPC], default=ResourceType.COMPUTE)
    region = StrictCharField(max_length=64, validators=[validate_region])
    instance_type = StrictCharField(max_length=64, required=False, validators=[validate_instance_type])
    vpc = VpcReferenceField(max_length=100, required=False, help_text="A VPC name, its RES_ ID, or 'default'.")
    name = StrictCharField(max_length=100, required=False, allow_blank=True, trim_whitespace=False)
    cidr_block = StrictCharField(max_length=18, required=False, validators=[validate_cidr_block])
    tags = TagsField(required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict) and data.get("type") == ResourceType.FUNCTION:
            raise serializers.ValidationError({"type": ["Function resources are created by POST /v1/functions."]})
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as error:
            # Report the fields the type requires along with the field errors, so every missing one is named at once.
            if isinstance(data, dict) and isinstance(error.detail, dict):
                for name, messages in self._missing_for_type(data.get("type", ResourceType.COMPUTE), data).items():
                    error.detail.setdefault(name, messages)
            raise

    def _missing_for_type(self, type_: str, values: dict) -> dict[str, list[str]]:
        """The fields a resource of ``type_`` requires that ``values`` lacks."""
        if type_ == ResourceType.VPC:
            required = ("name",) if not values.get("name") else ()
        elif type_ == ResourceType.COMPUTE:
            required = tuple(name for name in self.COMPUTE_ONLY if name not in values)
        else:
            required = ()
        return {name: [serializers.ErrorDetail("This field is required.", code="required")] for name in required}

    def validate(self, attrs):
        attrs = super().validate(attrs)
        errors = self._missing_for_type(attrs["type"], attrs)
        if attrs["type"] == ResourceType.VPC:
            for name in self.COMPUTE_ONLY:
                if name in attrs:
                    errors[name] = ["Not allowed for a VPC."]
            if attrs.get("name"):
                self._collect(errors, "name", validate_vpc_name, attrs["name"])
        else:
            for name in self.VPC_ONLY:
                if name in attrs:
                    errors[name] = ["Only allowed for a VPC."]
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


# The two shapes ``ResourceCreateSerializer`` takes, for the OpenAPI document: the request body is one of them.


class ComputeCreateSerializer(StrictSerializer):
    """A compute instance (``type`` defaults to ``compute``): region, instance type and VPC are required."""

    type = serializers.ChoiceField(choices=[ResourceType.COMPUTE], default=ResourceType.COMPUTE)
    region = StrictCharField(max_length=64, validators=[validate_region])
    instance_type = StrictCharField(max_length=64, validators=[validate_instance_type])
    vpc = VpcReferenceField(max_length=100, help_text="A VPC name, its RES_ ID, or 'default' (always works).")
    name = StrictCharField(max_length=100, required=False, allow_blank=True, validators=[validate_resource_name])
    tags = TagsField(required=False)


class VpcCreateSerializer(StrictSerializer):
    """A VPC (``type: "vpc"``): a name unique in its region, and optionally a CIDR block."""

    type = serializers.ChoiceField(choices=[ResourceType.VPC])
    region = StrictCharField(max_length=64, validators=[validate_region])
    name = StrictCharField(max_length=64, validators=[validate_vpc_name])
    cidr_block = StrictCharField(max_length=18, required=False, validators=[validate_cidr_block])
    tags = TagsField(required=False)


class ResourceUpdateSerializer(StrictSerializer):
    """``PATCH /v1/resources/{id}``: only ``name`` and ``tags`` can change (tags are replaced as a whole)."""

    # The resource's other fields (and a VPC's cidr_block): named as unchangeable rather than unknown.
    refused_fields = {name: "This field cannot be changed." for name in (*RESOURCE_FIELDS, "cidr_block")}

    name = StrictCharField(max_length=100, allow_blank=True, trim_whitespace=False, required=False)
    tags = TagsField(required=False)


class ResourceSerializer(serializers.ModelSerializer):
    """The resource object of API.md. ``context["expand"]`` nests ``vpc`` and adds ``function``.

    The declared fields describe the object (for the OpenAPI schema); ``to_representation``
    builds it directly, because DRF's per-field machinery costs more than the database
    on a page of 200 objects (and far more with a nested serializer per row).
    """

    id = serializers.CharField(source="public_id", read_only=True)
    name = serializers.CharField(allow_null=True)
    instance_type = serializers.CharField(allow_null=True)
    vpc = serializers.SerializerMethodField()
    tags = TagsField(read_only=True)
    memory = serializers.CharField(allow_null=True, help_text='e.g. "1024MB"; null for VPCs.')
    failure_reason = serializers.CharField(allow_null=True)
    function = serializers.SerializerMethodField()
    provider_id = serializers.CharField(
        allow_null=True,
        help_text="The provider's own id of it (an EC2 instance or VPC id, a Lambda function ARN); "
        "null until the provider has created it, and with the simulated provider.",
    )

    #: Present only when asked for (``expand=function``).
    optional_fields = ("function",)

    class Meta:
        model = Resource
        fields = [*RESOURCE_FIELDS, "function"]
        read_only_fields = fields

    def to_representation(self, resource: Resource) -> dict:
        expand = self.context.get("expand", ())
        data = self.represent(resource, expand_vpc="vpc" in expand)
        if "function" in expand:
            function = getattr(resource, "function", None) if resource.type == ResourceType.FUNCTION else None
            data["function"] = FunctionSerializer.represent(function) if function is not None else None
        return data

    @classmethod
    def represent(cls, resource: Resource, *, expand_vpc: bool = False) -> dict:
        vpc = None
        if resource.vpc_id is not None:
            if expand_vpc:
                vpc = cls.represent(resource.vpc)
            else:  # a lean page (resources.selectors.lean_page) annotates the VPC's public id: no VPC object
                vpc = getattr(resource, "vpc_public_id", None) or resource.vpc.public_id
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
            "created_at": rfc3339(resource.created_at),
            "updated_at": rfc3339(resource.updated_at),
            "provisioning_started_at": rfc3339(resource.provisioning_started_at),
            "provisioned_at": rfc3339(resource.provisioned_at),
            "last_execution": rfc3339(resource.last_execution),
            "failure_reason": resource.failure_reason or None,
            "provider_id": resource.provider_id or None,
        }

    @extend_schema_field(
        {
            # The expanded VPC is a resource: a named schema, so generated clients get no anonymous type.
            "oneOf": [
                {"type": "string", "pattern": r"^RES_[0-9]{10}$", "example": "RES_1234567890"},
                {"$ref": "#/components/schemas/Resource"},
            ],
            "nullable": True,
            "description": "The VPC's ID, or with expand=vpc the VPC object; null for VPCs and functions.",
        }
    )
    def get_vpc(self, resource):  # schema only: to_representation builds the value
        return None

    @extend_schema_field(
        {
            "allOf": [{"$ref": "#/components/schemas/Function"}],
            "nullable": True,
            "description": "With expand=function: the function a `type=function` resource runs (null for others).",
        }
    )
    def get_function(self, resource):  # schema only: to_representation builds the value
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
