from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "elbia.audit"
    label = "audit"
    verbose_name = "Audit trail"
