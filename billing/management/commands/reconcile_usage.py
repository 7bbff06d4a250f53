from django.core.management.base import BaseCommand, CommandError

from billing.reconcile import reconcile
from elbia.db.postgresql.base import no_statement_deadline

SHOWN = 20


class Command(BaseCommand):
    help = (
        "Recompute the daily usage rollups from the raw usage events and resources and report every "
        "difference; with --fix, rewrite the rollups of the accounts that differ. Safe alongside live traffic."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="Repair the accounts whose rollups differ.")
        parser.add_argument("--account", type=int, action="append", help="Only this account id (repeatable).")

    def handle(self, *args, **options):
        with no_statement_deadline():  # a month of raw events can take longer than a request's deadline
            report = reconcile(account_ids=options["account"], fix=options["fix"])
        for difference in report.differences[:SHOWN]:
            self.stdout.write(
                f"  {difference.table} account {difference.account_id} {difference.key}: "
                f"stored {difference.stored}, raw rows say {difference.expected}"
            )
        if len(report.differences) > SHOWN:
            self.stdout.write(f"  ... and {len(report.differences) - SHOWN} more")
        tables = ", ".join(f"{table} {count}" for table, count in sorted(report.by_table().items())) or "none"
        self.stdout.write(f"Reconciled {report.accounts} accounts: {len(report.differences)} differences ({tables}).")
        if options["fix"]:
            self.stdout.write(f"Repaired {report.repaired_accounts} accounts.")
        elif report.differences:
            raise CommandError("The rollups differ from the raw rows; run again with --fix to repair them.")
