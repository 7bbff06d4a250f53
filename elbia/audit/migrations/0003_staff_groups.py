"""The staff groups: ``support`` may view every Elbia model in the admin; ``operator`` may also run its actions.

Depends on the latest migration of every Elbia app at the time it was written; a model added later gets
its view permission into these groups after each ``migrate`` (``elbia.audit.apps.grant_staff_view_permissions``;
tests/test_admin.py checks that ``support`` can view every Elbia model).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ELBIA_APPS = ("accounts", "audit", "resources", "functions", "billing")
GROUPS = ("support", "operator")


def create_groups(apps, schema_editor):
    # Permissions are normally made after all migrations ran (post_migrate); make them now to use them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = list(Permission.objects.filter(content_type__app_label__in=ELBIA_APPS, codename__startswith="view_"))
    run_actions = Permission.objects.get(content_type__app_label="audit", codename="run_admin_actions")
    support, _ = Group.objects.get_or_create(name="support")
    support.permissions.add(*view)
    operator, _ = Group.objects.get_or_create(name="operator")
    operator.permissions.add(*view, run_actions)


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0003_idempotencyrecord"),
        ("audit", "0002_admin_permissions_and_indexes"),
        ("billing", "0002_seed_prices"),
        ("functions", "0003_lifecycle_and_indexes"),
        ("resources", "0003_list_indexes"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
