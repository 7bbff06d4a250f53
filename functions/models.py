"""Functions: serverless code an account deploys, each backed by a function resource."""

from django.core.exceptions import ValidationError
from django.db import models

from elbia.accounts.models import Account, AccountScopedQuerySet
from elbia.encryption import EncryptedValuesJSONField
from elbia.lifecycle import LifecycleModel
from functions.validators import (
    validate_code_sha256,
    validate_environment,
    validate_handler,
    validate_memory_mb,
    validate_name,
    validate_runtime,
    validate_tags,
    validate_timeout_s,
)
from resources.models import Resource
from resources.validators import validate_region


class FunctionStatus(models.TextChoices):
    """A function's lifecycle: created -> deploying -> active (or failed), then deprecated, deleting, deleted."""

    CREATED = "created"
    DEPLOYING = "deploying"
    ACTIVE = "active"
    FAILED = "failed"
    DEPRECATED = "deprecated"
    DELETING = "deleting"
    DELETED = "deleted"


TRANSIENT_STATUSES = (FunctionStatus.CREATED, FunctionStatus.DEPLOYING, FunctionStatus.DELETING)
LIVE = ~models.Q(status=FunctionStatus.DELETED)


class Function(LifecycleModel):
    """A deployed serverless function: code entry point, runtime and configuration."""

    PUBLIC_ID_PREFIX = "FUNC_"

    # No index of its own: every composite index below starts with the account.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="functions", db_index=False)
    resource = models.OneToOneField(Resource, null=True, blank=True, on_delete=models.PROTECT, related_name="function")
    name = models.CharField(max_length=64, validators=[validate_name])
    runtime = models.CharField(max_length=32, validators=[validate_runtime])
    handler = models.CharField(max_length=128)
    memory_mb = models.PositiveIntegerField(default=128, validators=[validate_memory_mb])
    timeout_s = models.PositiveIntegerField(default=3, validators=[validate_timeout_s])
    region = models.CharField(max_length=32, default="us-east-1", validators=[validate_region])
    tags = models.JSONField(default=list, blank=True, validators=[validate_tags])
    # Values encrypted at rest (one Fernet token per value), names in clear; code reads plaintext.
    environment = EncryptedValuesJSONField(
        default=dict, blank=True, validators=[validate_environment], help_text="Values are never returned by the API."
    )
    status = models.CharField(max_length=16, choices=FunctionStatus.choices, default=FunctionStatus.CREATED)
    # The code archive (functions.code): its sha256 in lowercase hex, the key of the stored object, and its size
    # in bytes; both null while a .NET or Go function (no starter code) has no code uploaded yet.
    code_sha256 = models.CharField(  # noqa: DJ001 (null, not "": the API shows null for "no code")
        max_length=64, null=True, blank=True, validators=[validate_code_sha256]
    )
    code_size = models.PositiveIntegerField(null=True, blank=True)

    deployment_started = models.DateTimeField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    last_executed = models.DateTimeField(null=True, blank=True)

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # Every list starts from one account and orders by (created_at, id) either way (a backward index scan
        # serves the ascending order). Deleted functions are hidden unless asked for, so the indexes serving
        # the default list and the runtime filter skip them; ?status= uses the status index.
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], condition=LIVE, name="function_account_live"),
            models.Index(fields=["account", "status", "-created_at", "-id"], name="function_account_status"),
            models.Index(
                fields=["account", "runtime", "-created_at", "-id"], condition=LIVE, name="function_account_runtime"
            ),
            # The reaper's query: functions in a transient status, oldest first.
            models.Index(
                fields=["updated_at"], condition=models.Q(status__in=TRANSIENT_STATUSES), name="function_transient"
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"], condition=~models.Q(status="deleted"), name="function_unique_live_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.name})"

    def clean(self) -> None:
        """The handler must have the format of the function's runtime."""
        try:
            validate_handler(self.handler, self.runtime)
        except ValidationError as error:
            raise ValidationError({"handler": error.messages}) from None

    @property
    def memory(self) -> str:
        """Memory as the API shows it, like a resource's (``"128MB"``)."""
        return f"{self.memory_mb}MB"


class FunctionTag(models.Model):
    """One tag of one function, kept in step with ``Function.tags`` so ``?tag=`` is an indexed lookup."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="tag_rows", db_index=False)
    tag = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["function", "tag"], name="function_tag_unique")]
        # (account, tag) finds an account's functions with a tag; the function id at the end lets the
        # list's EXISTS semi-join read the index alone.
        indexes = [models.Index(fields=["account", "tag", "function"], name="function_tag_account_tag")]

    def __str__(self) -> str:
        return self.tag
