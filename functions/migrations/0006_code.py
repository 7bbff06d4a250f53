"""Functions get code: its sha256 (hex) and size; existing functions get their runtime's starter code.

One starter archive per (runtime, handler) is stored in the ``code`` storage and one UPDATE sets it on
every function sharing them; functions on runtimes without a starter (.NET, Go) keep no code.
Reversing drops the columns and leaves the stored archives (content-addressed and harmless).
"""

from django.db import migrations, models

import functions.validators


def give_starter_code(apps, schema_editor):
    from functions.code import code_store
    from functions.runtimes import RUNTIMES
    from functions.starters import starter_archive

    Function = apps.get_model("functions", "Function")
    pairs = Function.objects.filter(code_sha256=None).values_list("runtime", "handler").distinct()
    for runtime, handler in pairs:
        if runtime not in RUNTIMES or not RUNTIMES[runtime].handler_is_valid(handler):
            continue
        archive = starter_archive(runtime, handler)
        if archive is None:
            continue
        sha256, size = code_store(archive)
        Function.objects.filter(code_sha256=None, runtime=runtime, handler=handler).update(
            code_sha256=sha256, code_size=size
        )


class Migration(migrations.Migration):
    dependencies = [
        ("functions", "0005_lifecycle_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="function",
            name="code_sha256",
            field=models.CharField(
                blank=True, max_length=64, null=True, validators=[functions.validators.validate_code_sha256]
            ),
        ),
        migrations.AddField(
            model_name="function",
            name="code_size",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(give_starter_code, migrations.RunPython.noop),
    ]
