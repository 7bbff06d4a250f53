"""Factories for resources: rows written directly, for tests that need them in a given state."""

import factory
from django.utils import timezone

from resources.models import Resource, ResourceStatus, ResourceType
from tests.factories import AccountFactory


class VpcFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Resource

    account = factory.SubFactory(AccountFactory)
    type = ResourceType.VPC
    name = factory.Sequence(lambda n: f"vpc-{n}")
    region = "us-east-1"
    cidr_block = "10.0.0.0/16"
    status = ResourceStatus.ACTIVE
    provisioning_started_at = factory.LazyFunction(timezone.now)
    provisioned_at = factory.LazyFunction(timezone.now)


class ComputeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Resource

    account = factory.SubFactory(AccountFactory)
    type = ResourceType.COMPUTE
    name = factory.Sequence(lambda n: f"web-{n}")
    region = "us-east-1"
    instance_type = "t2.micro"
    vpc = factory.SubFactory(
        VpcFactory, account=factory.SelfAttribute("..account"), region=factory.SelfAttribute("..region")
    )
    status = ResourceStatus.ACTIVE
    provisioning_started_at = factory.LazyFunction(timezone.now)
    provisioned_at = factory.LazyFunction(timezone.now)
