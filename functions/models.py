"""Functions: serverless code an account deploys, each backed by a function resource."""

from django.db import models
from django.utils import timezone

from elbia.accounts.models import Account
from elbia.api.ids import PublicIdModel
from resources.models import Resource


class FunctionStatus(models.TextChoices):
    CREATED = "created"
    DEPLOYING = "deploying"
    ACTIVE = "active"
    FAILED = "failed"
    DEPRECATED = "deprecated"
    DELETING = "deleting"
    DELETED = "deleted"


class FunctionQuerySet(models.QuerySet):
    def for_account(self, account: Account) -> "FunctionQuerySet":
        return self.filter(account=account)


class Function(PublicIdModel):
    """A deployed serverless function: code entry point, runtime and configuration."""

    PUBLIC_ID_PREFIX = "FUNC_"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="functions")
    resource = models.OneToOneField(Resource, null=True, blank=True, on_delete=models.PROTECT, related_name="function")
    name = models.CharField(max_length=64)
    runtime = models.CharField(max_length=32)
    handler = models.CharField(max_length=128)
    memory_mb = models.PositiveIntegerField(default=128)
    timeout_s = models.PositiveIntegerField(default=3)
    region = models.CharField(max_length=32, default="us-east-1")
    tags = models.JSONField(default=list, blank=True)
    environment = models.JSONField(default=dict, blank=True, help_text="Values are never returned by the API.")
    status = models.CharField(max_length=16, choices=FunctionStatus.choices, default=FunctionStatus.CREATED)
    failure_reason = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    deployment_started = models.DateTimeField(null=True, blank=True)
    deployed_at = models.DateTimeField(null=True, blank=True)
    deprecated_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    last_executed = models.DateTimeField(null=True, blank=True)

    objects = FunctionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="function_account_created"),
            models.Index(fields=["account", "status", "-created_at", "-id"], name="function_account_status"),
            models.Index(fields=["account", "runtime", "-created_at", "-id"], name="function_account_runtime"),
            models.Index(fields=["status", "updated_at"], name="function_status_updated"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name"], condition=~models.Q(status="deleted"), name="function_unique_live_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.name})"


class FunctionTag(models.Model):
    """One tag of one function, kept in step with ``Function.tags`` so ``?tag=`` is an indexed lookup."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="tag_rows")
    tag = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["function", "tag"], name="function_tag_unique")]
        indexes = [models.Index(fields=["account", "tag"], name="function_tag_account_tag")]

    def __str__(self) -> str:
        return self.tag
