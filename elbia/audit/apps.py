from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_migrate

#: The staff groups (elbia/audit/migrations/0003_staff_groups.py): ``support`` views every Elbia model in the
#: admin, ``operator`` may also run its actions. Neither sees users (0004_staff_groups_see_no_users.py).
STAFF_GROUPS = ("support", "operator")
ELBIA_APPS = ("accounts", "audit", "resources", "functions", "billing")
HIDDEN_FROM_STAFF = {"accounts": ("view_user", "view_signinaddress")}


def grant_staff_view_permissions(sender, using, apps=global_apps, **kwargs):  # flush sends no apps
    """After every ``migrate``, the staff groups may view every model of each Elbia app, new ones included.

    Runs for each app after django.contrib.auth made its permissions (auth's receiver is connected first),
    so a new model needs no migration of its own for staff to see it.
    """
    if sender.label not in ELBIA_APPS:
        return
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = Permission.objects.using(using).filter(content_type__app_label=sender.label, codename__startswith="view_")
    view = list(view.exclude(codename__in=HIDDEN_FROM_STAFF.get(sender.label, ())))
    for group in Group.objects.using(using).filter(name__in=STAFF_GROUPS):
        group.permissions.add(*view)


class AuditConfig(AppConfig):
    name = "elbia.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self):
        post_migrate.connect(grant_staff_view_permissions, dispatch_uid="elbia.audit.grant_staff_view_permissions")
