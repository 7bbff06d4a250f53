from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from billing.demo import seed_billing_demo
from elbia.accounts.models import User
from elbia.accounts.roles import Role
from elbia.accounts.services import account_create, membership_add, token_replace, user_create
from functions.models import Function
from functions.services import function_create
from resources.models import Resource
from resources.services import resource_create, vpc_create

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "elbia-demo-password"
DEMO_TOKEN_NAME = "Demo token"
#: A second member of the demo account, so a newcomer sees teams at once (same password).
DEMO_DEVELOPER = "demo-developer"


def issue_demo_token(*, base_url: str) -> str:
    """Issue the demo account a full-scope "Demo token" (revoking the previous one) and say how to use it."""
    user = User.objects.get(username=DEMO_USERNAME)
    issued = token_replace(user=user, scopes=list(settings.SCOPES), name=DEMO_TOKEN_NAME)
    base = base_url.rstrip("/")
    return "\n".join(
        [
            "",
            f"Access token:  {issued.access_token}",
            f"Refresh token: {issued.refresh_token}",
            "",
            "Try it:",
            f'  curl -H "Authorization: Bearer {issued.access_token}" {base}/v1/regions',
            "Renew it:",
            f"  curl -X POST {base}/oauth/token/ -d grant_type=refresh_token "
            f"-d refresh_token={issued.refresh_token} -d client_id={issued.client_id}",
            f"Dashboard: {base}/ (sign in as {DEMO_USERNAME} / {DEMO_PASSWORD}, the owner, "
            f"or {DEMO_DEVELOPER} / {DEMO_PASSWORD}, a developer)",
            "",
        ]
    )


class Command(BaseCommand):
    help = (
        "Create (or reuse) the demo account with sample data, and print a ready API token "
        "(the previous demo token is revoked: one at a time)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default=settings.ELBIA_PUBLIC_URL)
        parser.add_argument("--no-token", action="store_true", help="Seed only; issue no token.")

    @transaction.atomic
    def handle(self, *args, **options):
        user = User.objects.filter(username=DEMO_USERNAME).first()
        if user is None:
            user = account_create(username=DEMO_USERNAME, email="demo@example.com", password=DEMO_PASSWORD)
            self.stdout.write(f"Created the demo account (dashboard login: {DEMO_USERNAME} / {DEMO_PASSWORD}).")
        self.seed_team(user.account)
        self.seed_resources(user.account)
        self.seed_functions(user.account)
        invoice = seed_billing_demo(account=user.account)
        self.stdout.write(f"Usage metered; invoice {invoice.public_id} ({invoice.amount}) for the month just ended.")
        if not options["no_token"]:
            self.stdout.write(issue_demo_token(base_url=options["base_url"]))

    def seed_team(self, account) -> None:
        """A developer beside the owner (once)."""
        if User.objects.filter(username=DEMO_DEVELOPER).exists():
            return
        developer = user_create(username=DEMO_DEVELOPER, email="demo-developer@example.com", password=DEMO_PASSWORD)
        membership_add(account=account, user=developer, role=Role.DEVELOPER)
        self.stdout.write(f"Added {DEMO_DEVELOPER} to the demo account as a developer.")

    def seed_resources(self, account) -> None:
        """A few instances and VPCs (once): the worker provisions them after the seed commits."""
        if Resource.objects.for_account(account).exists():
            return
        resource_create(
            account=account,
            region="us-east-1",
            instance_type="t3.micro",
            vpc="default",
            name="web-1",
            tags={"env": "prod", "team": "web"},
        )
        resource_create(
            account=account,
            region="us-east-1",
            instance_type="m5.large",
            vpc="default",
            name="worker-1",
            tags={"env": "prod", "team": "data"},
        )
        vpc_create(account=account, region="eu-west-1", name="analytics", cidr_block="10.20.0.0/16")
        resource_create(
            account=account,
            region="eu-west-1",
            instance_type="c5.xlarge",
            vpc="analytics",
            name="etl-1",
            tags={"env": "staging"},
        )
        self.stdout.write("Created demo resources (they move from pending to active once the worker runs).")

    def seed_functions(self, account) -> None:
        """A few functions (once): the worker provisions their resources, then deploys them, after the seed commits."""
        if Function.objects.for_account(account).exists():
            return
        function_create(
            account=account,
            name="user-authentication",
            runtime="Node.js 20",
            handler="index.handler",
            memory_mb=256,
            tags=["auth", "team:identity"],
            environment={"LOG_LEVEL": "info", "JWT_SECRET": "demo-secret-not-shown-by-the-api"},
        )
        function_create(
            account=account,
            name="image-resize",
            runtime="Python 3.12",
            handler="app.handler",
            memory_mb=1024,
            timeout_s=30,
            region="eu-west-1",
            tags=["media"],
        )
        function_create(
            account=account,
            name="nightly-report",
            runtime="Java 21",
            handler="reports.Nightly::handleRequest",
            memory_mb=512,
            timeout_s=300,
            tags=["reports", "team:data"],
        )
        self.stdout.write("Created demo functions (created, then deploying, then active once the worker runs).")
