"""factory_boy factories shared by the whole suite."""

import datetime

import factory
from django.utils import timezone

from elbia.accounts.models import Account, Membership, User


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    account = factory.SubFactory(AccountFactory)
    password = factory.PostGenerationMethodCall("set_password", "correct-horse-battery")

    @factory.post_generation
    def save_password(self, create, extracted, **kwargs):
        if create:
            self.save()

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        """The user's membership of their account: ``owner`` unless ``role=`` names another (``role=""``: none)."""
        if create and self.account_id and extracted != "":
            Membership.objects.create(user=self, account_id=self.account_id, role=extracted or "owner")


class ResourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "resources.Resource"

    account = factory.SubFactory(AccountFactory)
    type = "compute"
    name = factory.Sequence(lambda n: f"server-{n}")
    region = "us-east-1"
    instance_type = "t3.micro"
    status = "active"


class FunctionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "functions.Function"
        skip_postgeneration_save = True

    account = factory.SubFactory(AccountFactory)
    name = factory.Sequence(lambda n: f"function-{n}")
    runtime = "Node.js 20"
    handler = "index.handler"
    status = "active"
    memory_mb = 128
    resource = factory.SubFactory(
        ResourceFactory,
        account=factory.SelfAttribute("..account"),
        type="function",
        instance_type="",
        memory_mb=factory.SelfAttribute("..memory_mb"),
    )

    @factory.post_generation
    def tag_rows(self, create, extracted, **kwargs):
        """The indexed tag rows the functions service keeps in step with ``tags``."""
        if create and self.tags:
            from functions.services import function_sync_tags

            function_sync_tags(function=self)


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.Price"

    kind = "request"
    instance_type = ""
    unit_price = "0.20"
    currency = "USD"
    effective_from = datetime.date(2020, 1, 1)


class UsageEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.UsageEvent"

    function = factory.SubFactory(FunctionFactory)
    account = factory.SelfAttribute("function.account")
    event_id = factory.Sequence(lambda n: f"event-{n}")
    timestamp = factory.LazyFunction(timezone.now)
    duration_ms = 100
    memory_mb = factory.SelfAttribute("function.memory_mb")


class InvoiceFactory(factory.django.DjangoModelFactory):
    """An open invoice for a closed month, with one line (rows written directly, as generation would)."""

    class Meta:
        model = "billing.Invoice"
        skip_postgeneration_save = True

    account = factory.SubFactory(AccountFactory)
    period = datetime.date(2024, 3, 1)
    date = datetime.date(2024, 3, 31)
    amount_cents = 1234
    status = "open"
    line = factory.RelatedFactory(
        "tests.factories.InvoiceLineFactory", factory_related_name="invoice", amount_cents=1234
    )


class InvoiceLineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "billing.InvoiceLine"

    position = 1
    kind = "request"
    description = "Function requests"
    quantity = "617000"
    unit = "requests"
    unit_price = "0.20"
    price_unit = "1M requests"
    amount_cents = 1234
