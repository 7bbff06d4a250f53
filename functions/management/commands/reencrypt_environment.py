"""Re-encrypt every function's environment values with the first key of ELBIA_SECRETS_KEY (after a rotation)."""

from django.core.management.base import BaseCommand
from django.db import transaction

from functions.models import Function


class Command(BaseCommand):
    help = (
        "Re-encrypt functions' environment values with the first key of ELBIA_SECRETS_KEY. Run it after putting "
        "a new key first; once it is done, the old keys can be dropped."
    )

    def handle(self, *args, **options):
        count = 0
        ids = list(Function.objects.exclude(environment={}).order_by("pk").values_list("pk", flat=True))
        for pk in ids:
            with transaction.atomic():
                function = Function.objects.select_for_update().only("pk", "environment").filter(pk=pk).first()
                if function is None:
                    continue
                # Read decrypts with any key; the write encrypts with the first one.
                Function.objects.filter(pk=pk).update(environment=function.environment)
                count += 1
        self.stdout.write(f"Re-encrypted the environment of {count} functions.")
