"""``migrate`` without the web's statement deadline: building an index on a large table takes longer than 2 s."""

from django.core.management.commands import migrate

from elbia.db.postgresql.base import no_statement_deadline


class Command(migrate.Command):
    def handle(self, *args, **options):
        with no_statement_deadline(options["database"]):
            return super().handle(*args, **options)
