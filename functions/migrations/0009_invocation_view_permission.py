"""The staff groups may view invocations too (as every Elbia model: elbia/audit/migrations/0003_staff_groups.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def grant(apps, schema_editor):
    app_config = apps.get_app_config("functions")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = list(Permission.objects.filter(content_type__app_label="functions", codename="view_invocation"))
    for group in Group.objects.filter(name__in=("support", "operator")):
        group.permissions.add(*view)


class Migration(migrations.Migration):
    dependencies = [("functions", "0008_invocations"), ("audit", "0003_staff_groups")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
