"""Input and output shapes of /v1/resources (input and output differ, so they are separate serializers)."""

from rest_framework import serializers

from elbia.api.serializers import StrictSerializer
from functions.api.serializers import FunctionSerializer
from resources.models import Resource, ResourceType
from resources.validators import (
    validate_cidr_block,
    validate_instance_type,
    validate_region,
    validate_resource_name,
    validate_tags,
    validate_vpc_name,
)


class TagsField(serializers.JSONField):
    """A JSON object of string keys to string values (see resources.validators.validate_tags)."""

    def __init__(self, **kwargs):
        super().__init__(validators=[validate_tags], **kwargs)


class ResourceCreateSerializer(StrictSerializer):
    """``POST /v1/resources``: a compute instance by default, a VPC with ``type: "vpc"``."""

    COMPUTE_ONLY = ("instance_type", "vpc")
    VPC_ONLY = ("cidr_block",)

    type = serializers.ChoiceField(choices=[ResourceType.COMPUTE, ResourceType.VPC], default=ResourceType.COMPUTE)
    region = serializers.CharField(max_length=64, validators=[validate_region])
    instance_type = serializers.CharField(max_length=64, required=False, validators=[validate_instance_type])
    vpc = serializers.CharField(max_length=100, required=False, help_text="A VPC name, its RES_ ID, or 'default'.")
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, trim_whitespace=False)
    cidr_block = serializers.CharField(max_length=18, required=False, validators=[validate_cidr_block])
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
        except Exception as error:  # a Django ValidationError
            errors[field] = list(getattr(error, "messages", [str(error)]))


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

    name = serializers.CharField(max_length=100, allow_blank=True, trim_whitespace=False, required=False)
    tags = TagsField(required=False)


def _or_none(value):
    return value if value not in ("", None) else None


class ResourceSerializer(serializers.ModelSerializer):
    """The resource object of API.md. ``context["expand"]`` nests ``vpc`` and adds ``function``."""

    id = serializers.CharField(source="public_id", read_only=True)
    name = serializers.SerializerMethodField()
    instance_type = serializers.SerializerMethodField()
    vpc = serializers.SerializerMethodField()
    memory = serializers.SerializerMethodField()
    failure_reason = serializers.SerializerMethodField()

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

    @property
    def expand(self) -> set[str]:
        return self.context.get("expand", set())

    def to_representation(self, resource):
        data = super().to_representation(resource)
        if "function" in self.expand:
            function = getattr(resource, "function", None) if resource.type == ResourceType.FUNCTION else None
            data["function"] = FunctionSerializer(function).data if function is not None else None
        return data

    def get_name(self, resource) -> str | None:
        return _or_none(resource.name)

    def get_instance_type(self, resource) -> str | None:
        return _or_none(resource.instance_type)

    def get_vpc(self, resource):
        if resource.vpc_id is None:
            return None
        if "vpc" in self.expand:
            return ResourceSerializer(resource.vpc).data
        return resource.vpc.public_id

    def get_memory(self, resource) -> str | None:
        return resource.memory

    def get_failure_reason(self, resource) -> str | None:
        return _or_none(resource.failure_reason)
