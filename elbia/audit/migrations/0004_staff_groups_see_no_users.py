"""The staff groups see no users: user records (names, emails, password hashes) stay with superusers.

Support staff find an account's people through the account (its audit events name who acted); changing
or reading users is for superusers, as docs/admin.md says.
"""

from django.db import migrations

GROUPS = ("support", "operator")
USER_PERMISSIONS = ("view_user", "view_signinaddress")


def remove_user_permissions(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(content_type__app_label="accounts", codename__in=USER_PERMISSIONS)
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.remove(*permissions)


def restore_view_user(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view_user = Permission.objects.filter(content_type__app_label="accounts", codename="view_user")
    for group in Group.objects.filter(name__in=GROUPS):
        group.permissions.add(*view_user)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_staff_groups"),
        ("accounts", "0004_token_end_and_sign_in_addresses"),
    ]

    operations = [migrations.RunPython(remove_user_permissions, restore_view_user)]
