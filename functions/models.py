"""Functions: serverless code an account deploys, each backed by a function resource."""

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from elbia.accounts.models import Account, AccountScopedQuerySet
from elbia.api.ids import PublicIdModel
from elbia.encryption import EncryptedValuesJSONField
from elbia.lifecycle import LifecycleModel
from functions.code import CodeUnavailable, code_read
from functions.runtimes import RUNTIMES
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
            # The drift check pages through the active functions of one region by id.
            models.Index(
                fields=["region", "id"],
                condition=models.Q(status=FunctionStatus.ACTIVE),
                name="function_active_by_region",
            ),
            # Staff find a function by its ARN (an exact search in the admin).
            models.Index(fields=["provider_id"], condition=~models.Q(provider_id=""), name="function_provider_id"),
            # The admin's drift filter: the few rows the drift check found changed, newest first.
            models.Index(fields=["-id"], condition=models.Q(drifted_at__isnull=False), name="function_drifted"),
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

    @property
    def runtime_identifier(self) -> str:
        """The runtime as AWS Lambda names it (``nodejs20.x`` for ``Node.js 20``)."""
        return RUNTIMES[self.runtime].identifier

    def code_archive(self) -> bytes:
        """The function's stored ZIP archive, for a provider to upload; ``CodeUnavailable`` without one."""
        if not self.code_sha256:
            raise CodeUnavailable(f"Function {self.public_id} has no code to deploy (its runtime has no starter code).")
        return code_read(self.code_sha256)


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


class InvocationStatus(models.TextChoices):
    """An invocation's course: queued (asynchronous only) -> running -> succeeded or failed."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class InvocationType(models.TextChoices):
    """How the caller asked: ``RequestResponse`` waits for the result, ``Event`` queues it (AWS Lambda's names)."""

    REQUEST_RESPONSE = "RequestResponse"
    EVENT = "Event"


class Invocation(PublicIdModel):
    """One run of a function on one event: its outcome, measures and output tail, kept 7 days.

    A running invocation holds a concurrency slot until ``lease_expires_at`` at the latest (see
    ``functions.concurrency``); its finish records the usage event (``event_id`` = ``public_id``).
    """

    PUBLIC_ID_PREFIX = "EXEC_"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+", db_index=False)
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="invocations", db_index=False)
    invocation_type = models.CharField(max_length=16, choices=InvocationType.choices)
    status = models.CharField(max_length=16, choices=InvocationStatus.choices)
    # The event of a queued invocation until it runs (a synchronous one never stores it).
    event = models.BinaryField(null=True, editable=False)
    result = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True, help_text="{errorType, errorMessage, trace} when it failed.")
    log_tail = models.TextField(blank=True, help_text="The last 4 KB of the function's output.")
    duration_ms = models.FloatField(null=True, blank=True)
    billed_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    init_duration_ms = models.FloatField(null=True, blank=True)
    memory_mb = models.PositiveIntegerField()
    cold = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A function's invocations, newest first (the list, the console's last ten).
            models.Index(fields=["account", "function", "-created_at", "-id"], name="invocation_function"),
            # The purge: oldest first.
            models.Index(fields=["created_at"], name="invocation_created"),
            # Counting the running invocations (concurrency without Redis).
            models.Index(
                fields=["account", "function"], condition=models.Q(status="running"), name="invocation_running"
            ),
        ]

    def __str__(self) -> str:
        return self.public_id
