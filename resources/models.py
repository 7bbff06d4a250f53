"""Resources: everything an account runs (compute instances, function compute, VPCs)."""

from django.core.exceptions import ValidationError
from django.db import models

from elbia.accounts.models import Account, AccountScopedQuerySet
from elbia.lifecycle import LifecycleModel
from resources.catalog import INSTANCE_TYPES
from resources.validators import (
    validate_cidr_block,
    validate_instance_type,
    validate_region,
    validate_resource_name,
    validate_tags,
    validate_vpc_name,
)


class ResourceType(models.TextChoices):
    """What a resource is: a compute instance, the compute behind a function, or a network."""

    COMPUTE = "compute"
    FUNCTION = "function"
    VPC = "vpc"


class ResourceStatus(models.TextChoices):
    """Lifecycle: pending -> provisioning -> active (or failed); active or failed -> deleting -> deleted."""

    PENDING = "pending"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


LIVE_STATUSES = (ResourceStatus.PENDING, ResourceStatus.PROVISIONING, ResourceStatus.ACTIVE, ResourceStatus.DELETING)
TRANSIENT_STATUSES = (ResourceStatus.PENDING, ResourceStatus.PROVISIONING, ResourceStatus.DELETING)
LIVE = ~models.Q(status=ResourceStatus.DELETED)
# What says when a compute instance was active (billing meters every change of these on save).
LIFECYCLE_FIELDS = (
    "account_id",
    "type",
    "instance_type",
    "provisioned_at",
    "deleting_started_at",
    "deleted_at",
    "failed_at",
)


class Resource(LifecycleModel):
    """A compute instance, the compute behind a function, or a VPC, owned by one account."""

    PUBLIC_ID_PREFIX = "RES_"

    # No index of its own: every composite index below starts with the account.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="resources", db_index=False)
    type = models.CharField(max_length=16, choices=ResourceType.choices, default=ResourceType.COMPUTE)
    name = models.CharField(max_length=100, blank=True, validators=[validate_resource_name])
    region = models.CharField(max_length=32)
    instance_type = models.CharField(max_length=32, blank=True)
    vpc = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="members")
    cidr_block = models.CharField(max_length=18, blank=True)
    memory_mb = models.PositiveIntegerField(null=True, blank=True, help_text="Function resources only.")
    tags = models.JSONField(default=dict, blank=True, validators=[validate_tags])
    status = models.CharField(max_length=16, choices=ResourceStatus.choices, default=ResourceStatus.PENDING)

    provisioning_started_at = models.DateTimeField(null=True, blank=True)
    provisioned_at = models.DateTimeField(null=True, blank=True)
    deleting_started_at = models.DateTimeField(null=True, blank=True)
    last_execution = models.DateTimeField(null=True, blank=True)

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # Every list query starts from one account and orders by (created_at, id) in either direction
        # (a backward index scan serves the ascending order). Deleted rows are hidden by default, so the
        # indexes that serve the default list and the plain type/region/instance_type filters skip them
        # (partial indexes: smaller, and index-only scans need not visit the table to test the status).
        # PostgreSQL also gets a GIN index on tags and a pattern index on name (migration 0003).
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], condition=LIVE, name="resource_account_live"),
            models.Index(fields=["account", "status", "-created_at", "-id"], name="resource_account_status"),
            models.Index(
                fields=["account", "type", "-created_at", "-id"], condition=LIVE, name="resource_account_type"
            ),
            models.Index(
                fields=["account", "region", "-created_at", "-id"], condition=LIVE, name="resource_account_region"
            ),
            models.Index(
                fields=["account", "instance_type", "-created_at", "-id"],
                condition=LIVE,
                name="resource_account_itype",
            ),
            # The reaper's query: rows in a transient status, oldest first.
            models.Index(
                fields=["updated_at"], condition=models.Q(status__in=TRANSIENT_STATUSES), name="resource_transient"
            ),
            # The drift check pages through the active resources of one type and region by id.
            models.Index(
                fields=["type", "region", "id"],
                condition=models.Q(status=ResourceStatus.ACTIVE),
                name="resource_active_by_kind",
            ),
            # Staff find a resource by its instance or VPC id (an exact search in the admin).
            models.Index(fields=["provider_id"], condition=~models.Q(provider_id=""), name="resource_provider_id"),
            # The admin's drift filter: the few rows the drift check found changed, newest first.
            models.Index(fields=["-id"], condition=models.Q(drifted_at__isnull=False), name="resource_drifted"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "region", "name"],
                condition=models.Q(type="vpc") & ~models.Q(status="deleted"),
                name="resource_unique_live_vpc_name",
            )
        ]

    def __str__(self) -> str:
        return f"{self.public_id} ({self.type})"

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance.remember_lifecycle()
        return instance

    def remember_lifecycle(self) -> None:
        """Keep the lifecycle fields as stored (``None`` when some were not loaded): billing meters their changes."""
        loaded = self.__dict__
        stored = all(name in loaded for name in LIFECYCLE_FIELDS)
        self.stored_lifecycle = {name: loaded[name] for name in LIFECYCLE_FIELDS} if stored else None

    def lifecycle_values(self) -> dict:
        return {name: getattr(self, name) for name in LIFECYCLE_FIELDS}

    def clean(self) -> None:
        """What each type needs: a catalog region; an instance type and VPC (compute); memory (function)."""
        checks = [("region", validate_region)]
        if self.type == ResourceType.COMPUTE:
            checks.append(("instance_type", validate_instance_type))
        elif self.type == ResourceType.VPC:
            checks += [("name", validate_vpc_name), ("cidr_block", validate_cidr_block)]
        errors: dict[str, list[str]] = {}
        for field, validate in checks:
            try:
                validate(getattr(self, field))
            except ValidationError as error:
                errors[field] = error.messages
        if self.type == ResourceType.COMPUTE and self.vpc_id is None:
            errors["vpc"] = ["A compute resource needs a VPC."]
        if self.type == ResourceType.FUNCTION and not self.memory_mb:
            errors["memory_mb"] = ["A function resource needs its memory size."]
        if errors:
            raise ValidationError(errors)

    @property
    def memory(self) -> str | None:
        """Memory as the API shows it (``"1024MB"``): the instance type's, or the function's."""
        if self.type == ResourceType.FUNCTION and self.memory_mb:
            return f"{self.memory_mb}MB"
        kind = INSTANCE_TYPES.get(self.instance_type)
        return f"{kind.memory_mb}MB" if kind else None
