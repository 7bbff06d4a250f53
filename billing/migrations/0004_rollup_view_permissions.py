"""The staff groups may view the usage rollups too (as every Elbia model: elbia/audit/migrations/0003_staff_groups.py)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODELS = ("functionusageday", "computeusageday", "opencomputespans", "opencomputespan", "meteringclose")


def grant(apps, schema_editor):
    app_config = apps.get_app_config("billing")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = list(
        Permission.objects.filter(content_type__app_label="billing", codename__in=[f"view_{m}" for m in MODELS])
    )
    for group in Group.objects.filter(name__in=("support", "operator")):
        group.permissions.add(*view)


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_usage_rollups"), ("audit", "0003_staff_groups")]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
