import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from elbia.accounts.models import Account, User
from elbia.accounts.services import token_issue


class Command(BaseCommand):
    help = (
        "Issue an API token (access token and refresh token) for a user, acting on one of their accounts with "
        "scopes their role there allows."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--scopes", required=True, help='Space-separated scopes, e.g. "resources:read resources:write".'
        )
        parser.add_argument("--name", default="CLI token")
        parser.add_argument("--days", type=int, default=None, help="Days until the access token expires (default 30).")
        parser.add_argument("--rate-limit", default="", help="Own request budget, e.g. 100/minute.")
        parser.add_argument(
            "--account", type=int, default=None, help="The id of the account it acts on (default: the user's own)."
        )
        parser.add_argument("--json", action="store_true", help="Print the token as JSON.")

    def handle(self, *args, **options):
        try:
            user = User.objects.get(username=options["username"])
        except User.DoesNotExist:
            raise CommandError(f"No user named '{options['username']}'.") from None
        account = None
        if options["account"] is not None:
            account = Account.objects.filter(pk=options["account"]).first()
            if account is None:
                raise CommandError(f"No account with id {options['account']}.")
        try:
            issued = token_issue(
                account=account,
                user=user,
                scopes=options["scopes"].split(),
                name=options["name"],
                days=options["days"],
                rate_limit=options["rate_limit"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()))
        expires_at = issued.expires_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if options["json"]:
            document = {
                "access_token": issued.access_token,
                "refresh_token": issued.refresh_token,
                "expires_at": expires_at,
                "scopes": issued.scopes,
                "client_id": issued.client_id,
            }
            self.stdout.write(json.dumps(document, indent=2))
            return
        self.stdout.write(f"Access token:  {issued.access_token}")
        self.stdout.write(f"Refresh token: {issued.refresh_token}")
        self.stdout.write(f"Expires at:    {expires_at}")
        self.stdout.write(f"Scopes:        {' '.join(issued.scopes)}")
        self.stdout.write(f"Client ID:     {issued.client_id}")
