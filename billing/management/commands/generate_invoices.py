from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.periods import format_month, parse_month
from billing.services import invoice_generate_missing


class Command(BaseCommand):
    help = (
        "Create every invoice still missing for closed months (what the daily beat job does), "
        "or only those of --month. Safe to run any number of times, even alongside the job."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", help="Only this closed month, as YYYY-MM.")

    def handle(self, *args, **options):
        month = None
        if options["month"] is not None:
            try:
                month = parse_month(options["month"])
            except ValueError as exc:
                raise CommandError(f"--month: {exc}") from None
        try:
            run = invoice_generate_missing(month=month)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        scope = f" for {format_month(month)}" if month else ""
        self.stdout.write(
            f"Invoices{scope}: {run.created} created, {run.existing} already there, {run.failed} not priced."
        )
        if run.failed:
            raise CommandError("Some months have no price in the price book; add them in the admin and run again.")
