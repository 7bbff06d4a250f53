"""Encrypt the values of every function's environment (names stay in clear); the reverse decrypts them.

The data step runs while the field is still a plain JSONField, so it reads and writes the column as is;
then the field becomes an ``EncryptedValuesJSONField`` (same jsonb column, no schema change).
"""

from django.db import migrations

import elbia.encryption
import functions.validators


def _convert(apps, convert):
    Function = apps.get_model("functions", "Function")
    for pk, environment in Function.objects.exclude(environment={}).values_list("pk", "environment").iterator():
        Function.objects.filter(pk=pk).update(environment=convert(environment))


def encrypt(apps, schema_editor):
    _convert(apps, elbia.encryption.encrypt_values)


def decrypt(apps, schema_editor):
    _convert(apps, elbia.encryption.decrypt_values)


class Migration(migrations.Migration):
    dependencies = [
        ("functions", "0003_lifecycle_and_indexes"),
    ]

    operations = [
        migrations.RunPython(encrypt, decrypt),
        migrations.AlterField(
            model_name="function",
            name="environment",
            field=elbia.encryption.EncryptedValuesJSONField(
                blank=True,
                default=dict,
                help_text="Values are never returned by the API.",
                validators=[functions.validators.validate_environment],
            ),
        ),
    ]
