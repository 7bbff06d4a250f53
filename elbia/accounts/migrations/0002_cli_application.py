"""The built-in public OAuth client that issues Elbia API tokens and renews them."""

from django.conf import settings
from django.db import migrations

from elbia.accounts.tokens import CLI_APPLICATION


def create_cli_application(apps, schema_editor):
    Application = apps.get_model("oauth2_provider", "Application")
    Application.objects.get_or_create(
        client_id=settings.ELBIA_CLI_CLIENT_ID,
        defaults=CLI_APPLICATION,
    )


def delete_cli_application(apps, schema_editor):
    apps.get_model("oauth2_provider", "Application").objects.filter(client_id=settings.ELBIA_CLI_CLIENT_ID).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("oauth2_provider", "0022_refreshtoken_token_family_index"),
    ]

    operations = [migrations.RunPython(create_cli_application, delete_cli_application)]
