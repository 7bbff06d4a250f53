from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from elbia.accounts.services import account_create


class Command(BaseCommand):
    help = "Create a customer account with its first user (or a staff user with --staff)."

    def add_arguments(self, parser):
        parser.add_argument("--username", required=True)
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--staff", action="store_true", help="Create a staff user for the admin (no account).")
        parser.add_argument("--account-name", default="", help="Name of the account (default: the username).")

    def handle(self, *args, **options):
        try:
            user = account_create(
                username=options["username"],
                email=options["email"],
                password=options["password"],
                staff=options["staff"],
                account_name=options["account_name"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()))
        kind = "staff user" if user.is_staff else f"account '{user.account.name}' with user"
        self.stdout.write(self.style.SUCCESS(f"Created {kind} {user.username}."))
