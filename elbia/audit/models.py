"""The audit trail: who changed what, when, from where, under which request."""

from django.conf import settings
from django.db import models
from django.utils import timezone

from elbia.accounts.models import Account, AccountScopedQuerySet


class ActorType(models.TextChoices):
    """Who took an audited action: an API token, a dashboard user, staff in the admin, or the system itself."""

    TOKEN = "token", "API token"
    USER = "user", "Dashboard user"
    STAFF = "staff", "Staff"
    SYSTEM = "system", "System"


class AuditEvent(models.Model):
    """One state-changing action taken through the API, the dashboard or the admin."""

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_type = models.CharField(max_length=8, choices=ActorType.choices)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor = models.CharField(max_length=200, help_text="Username, token name or staff member at the time.")
    action = models.CharField(max_length=64, help_text="What was done, e.g. resource.create.")
    object_type = models.CharField(max_length=32, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    changed_fields = models.JSONField(default=list, blank=True, help_text="Names only: values may be secret.")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    request_id = models.CharField(max_length=128, blank=True)

    objects = AccountScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        # Audit events are written by code only: staff may view them (and, with the custom permission,
        # run the admin's actions; it lives here because the audit trail records every one of them).
        default_permissions = ("view",)
        permissions = [("run_admin_actions", "Can run staff actions in the admin (retry, deprovision, revoke, ...)")]
        # The admin lists newest first, in full or by account, action or request; objects by their ID.
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="audit_created"),
            models.Index(fields=["account", "-created_at"], name="audit_account_created"),
            models.Index(fields=["object_id"], name="audit_object"),
            models.Index(fields=["action", "-created_at"], name="audit_action_created"),
            models.Index(fields=["request_id"], name="audit_request"),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.object_id} by {self.actor}"
