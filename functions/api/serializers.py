"""Input and output shapes of /v1/functions (they differ, so they are separate serializers).

``FunctionSerializer`` is the one representation of a function: the functions API returns it and the
resources API nests it (``GET /v1/resources/{id}?expand=function``). Environment variables appear as
their names only; their values are write-only.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from elbia.api.serializers import StrictCharField, StrictSerializer, rfc3339
from functions.code import decode_code_base64
from functions.models import Function, FunctionStatus
from functions.runtimes import MAX_HANDLER_LENGTH, RUNTIMES
from functions.validators import (
    validate_current_runtime,
    validate_environment,
    validate_environment_patch,
    validate_handler,
    validate_memory_mb,
    validate_name,
    validate_tags,
    validate_timeout_s,
)
from resources.validators import validate_region

READ_ONLY = "This field is read-only."
#: Fields of a function only the service sets: refused in a create or an update.
SERVER_SET_FIELDS = (
    "id",
    "status",
    "resource",
    "code_sha256",
    "code_size",
    "provider_id",
    "created_at",
    "deployment_started",
    "deployed_at",
    "last_executed",
    "failure_reason",
)


class FunctionSerializer(serializers.ModelSerializer):
    """A serverless function. Its environment variables are listed by name; their values are never returned."""

    # The declared fields describe the object (for the OpenAPI schema); ``represent`` builds it directly,
    # as ``ResourceSerializer`` does, because DRF's per-field machinery costs more than the database on a
    # page of functions. Both the functions API and ``expand=function`` on resources use ``represent``.

    id = serializers.CharField(source="public_id")
    memory = serializers.CharField(help_text='Memory as resources show it, e.g. "128MB".')
    memory_mb = serializers.IntegerField(help_text="Memory in MB, as a number.")
    timeout = serializers.IntegerField(source="timeout_s", help_text="Timeout in seconds.")
    environment = serializers.ListField(
        child=serializers.CharField(), help_text="Names of the environment variables (never their values)."
    )
    tags = serializers.ListField(child=serializers.CharField())
    resource = serializers.CharField(allow_null=True, help_text="ID of the function's resource (type function).")
    code_sha256 = serializers.CharField(
        allow_null=True,
        help_text="SHA-256 of the code's ZIP archive in lowercase hex (64 characters); AWS Lambda's CodeSha256 is "
        "the base64 of the same digest. Null only for a .NET or Go function no code was uploaded to yet.",
    )
    code_size = serializers.IntegerField(allow_null=True, help_text="Size of the code's ZIP archive in bytes.")
    provider_id = serializers.CharField(
        allow_null=True,
        help_text="The provider's own id of the deployed function (its AWS Lambda ARN); null until deployed, "
        "and with the simulated provider.",
    )
    failure_reason = serializers.CharField(allow_null=True)

    class Meta:
        model = Function
        fields = [
            "id",
            "name",
            "runtime",
            "handler",
            "status",
            "memory",
            "memory_mb",
            "timeout",
            "region",
            "tags",
            "environment",
            "resource",
            "code_sha256",
            "code_size",
            "provider_id",
            "created_at",
            "deployment_started",
            "deployed_at",
            "last_executed",
            "failure_reason",
        ]
        read_only_fields = fields

    def to_representation(self, function: Function) -> dict:
        return self.represent(function)

    @staticmethod
    def represent(function: Function) -> dict:
        """The function as the API shows it; reads ``function.resource`` (select it with the function)."""
        return {
            "id": function.public_id,
            "name": function.name,
            "runtime": function.runtime,
            "handler": function.handler,
            "status": function.status,
            "memory": function.memory,
            "memory_mb": function.memory_mb,
            "timeout": function.timeout_s,
            "region": function.region,
            "tags": function.tags,
            "environment": sorted(function.environment),  # names only: values are write-only
            "resource": function.resource.public_id if function.resource_id is not None else None,
            "code_sha256": function.code_sha256 or None,
            "code_size": function.code_size,
            "provider_id": function.provider_id or None,
            "created_at": rfc3339(function.created_at),
            "deployment_started": rfc3339(function.deployment_started),
            "deployed_at": rfc3339(function.deployed_at),
            "last_executed": rfc3339(function.last_executed),
            "failure_reason": function.failure_reason or None,
        }


#: A handler some runtime accepts (each runtime's own pattern is in GET /v1/runtimes; the service checks it).
HANDLER_PATTERN = (
    "^(?:" + "|".join(sorted({runtime.handler_pattern.strip("^$") for runtime in RUNTIMES.values()})) + ")$"
)


@extend_schema_field({"type": "string", "pattern": HANDLER_PATTERN})
class HandlerField(StrictCharField):
    """A handler: its format depends on the runtime (checked against it); the schema states the union."""


@extend_schema_field({"type": "string", "enum": [FunctionStatus.DEPRECATED]})
class DeprecateField(StrictCharField):
    """``status`` in a PATCH: only "deprecated" (the service refuses anything else, naming it)."""


class IntegerField(serializers.IntegerField):
    """A JSON integer, nothing else (DRF's IntegerField would also take "128" and 128.0)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class TagListField(serializers.JSONField):
    """A list of tags (see functions.validators.validate_tags)."""

    def __init__(self, **kwargs):
        super().__init__(validators=[validate_tags], **kwargs)


class EnvironmentField(serializers.JSONField):
    """Environment variables: names to string values. Its error messages never show a value."""

    def __init__(self, validator=validate_environment, **kwargs):
        super().__init__(validators=[validator], **kwargs)


@extend_schema_field(OpenApiTypes.BYTE)
class CodeField(serializers.Field):
    """A ZIP archive as base64 (AWS Lambda's ``ZipFile``): the bytes; the service checks the archive itself."""

    def to_internal_value(self, data) -> bytes:
        try:
            return decode_code_base64(data)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None

    def to_representation(self, value):  # write-only
        raise NotImplementedError


class FunctionCreateSerializer(StrictSerializer):
    """``POST /v1/functions``."""

    refused_fields = {
        **dict.fromkeys(SERVER_SET_FIELDS, READ_ONLY),
        "memory": "Send memory_mb, the memory in MB as an integer.",
        "timeout": "Send timeout_s, the timeout in seconds as an integer.",
    }

    name = StrictCharField(
        validators=[validate_name], help_text="Unique in the account; a DNS label, e.g. my-function."
    )
    runtime = StrictCharField(validators=[validate_current_runtime], help_text="A runtime name from GET /v1/runtimes.")
    handler = HandlerField(
        max_length=MAX_HANDLER_LENGTH, help_text="Entry point in the runtime's format, e.g. index.handler."
    )
    memory_mb = IntegerField(required=False, validators=[validate_memory_mb], help_text="128 to 10240 (default 128).")
    timeout_s = IntegerField(required=False, validators=[validate_timeout_s], help_text="1 to 900 (default 3).")
    region = StrictCharField(required=False, validators=[validate_region], help_text="Default us-east-1.")
    tags = TagListField(required=False)
    environment = EnvironmentField(required=False, help_text="Variable names to string values (write-only).")
    code = CodeField(
        required=False,
        write_only=True,
        help_text="The code: a ZIP archive in base64 (standard alphabet, padded), as AWS Lambda's ZipFile. The "
        "whole request body is at most 1 MB, so about 750 KB of ZIP fit here; upload larger archives (up to 50 MB) "
        "with PUT /v1/functions/{id}/code. Without it the function gets its runtime's starter handler.",
    )

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "handler" in attrs and "runtime" in attrs:
            try:
                validate_handler(attrs["handler"], attrs["runtime"])
            except Exception as error:  # a Django ValidationError
                raise serializers.ValidationError({"handler": list(error.messages)}) from None
        return attrs


class FunctionUpdateSerializer(StrictSerializer):
    """``PATCH /v1/functions/{id}``: configuration (redeploys), tags, or ``status: "deprecated"``."""

    # ``status`` is declared below: only "deprecated" may be sent.
    refused_fields = dict.fromkeys(
        [*(name for name in SERVER_SET_FIELDS if name != "status"), "name", "runtime", "region", "memory", "timeout"],
        "This field cannot be changed.",
    )

    handler = HandlerField(required=False, max_length=MAX_HANDLER_LENGTH)
    memory_mb = IntegerField(required=False, validators=[validate_memory_mb])
    timeout_s = IntegerField(required=False, validators=[validate_timeout_s])
    tags = TagListField(required=False, help_text="Replaces the tags.")
    environment = EnvironmentField(
        validator=validate_environment_patch,
        required=False,
        help_text="A merge patch: a string sets a variable, null removes it, unnamed variables stay.",
    )
    status = DeprecateField(required=False, help_text='Only "deprecated" (checked by the service).')


class CodeLinkSerializer(serializers.Serializer):
    """``GET /v1/functions/{id}/code``: where to download the function's current code, without a token."""

    url = serializers.URLField(help_text="A signed link to the ZIP archive; it needs no token and expires.")
    expires_at = serializers.DateTimeField(help_text="When the link stops working (ELBIA_CODE_LINK_SECONDS later).")
    code_sha256 = serializers.CharField(help_text="SHA-256 of the archive the link downloads, lowercase hex.")
    code_size = serializers.IntegerField(help_text="Size of the archive in bytes.")


class RuntimeSerializer(serializers.Serializer):
    """One entry of ``GET /v1/runtimes``."""

    name = serializers.CharField(help_text='What the API takes, e.g. "Node.js 20".')
    identifier = serializers.CharField(help_text="The AWS Lambda runtime identifier, e.g. nodejs20.x.")
    language = serializers.CharField()
    handler_format = serializers.CharField(help_text="e.g. file.function, package.Class::method")
    handler_example = serializers.CharField(help_text="e.g. index.handler")
    handler_pattern = serializers.CharField(help_text="Regular expression a handler must match (anchored).")
    deprecated = serializers.BooleanField(help_text="New functions cannot use a deprecated runtime.")
