"""Factories for functions: rows written directly, for tests that need them in a given state."""

import factory
from django.utils import timezone

from functions.models import Function, FunctionStatus
from resources.models import ResourceType
from tests import factories


class FunctionResourceFactory(factories.ResourceFactory):
    """The compute behind a function (``type=function``)."""

    type = ResourceType.FUNCTION
    instance_type = ""
    memory_mb = 128
    provisioning_started_at = factory.LazyFunction(timezone.now)
    provisioned_at = factory.LazyFunction(timezone.now)


class FunctionFactory(factories.FunctionFactory):
    """An active function with its active resource; its ``FunctionTag`` rows follow ``tags`` (the parent's hook)."""

    class Meta:
        model = Function
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"fn-{n}")
    memory_mb = 128
    region = "us-east-1"
    tags = factory.LazyFunction(list)
    environment = factory.LazyFunction(dict)
    status = FunctionStatus.ACTIVE
    deployment_started = factory.LazyFunction(timezone.now)
    deployed_at = factory.LazyFunction(timezone.now)
    resource = factory.SubFactory(
        FunctionResourceFactory,
        account=factory.SelfAttribute("..account"),
        region=factory.SelfAttribute("..region"),
        memory_mb=factory.SelfAttribute("..memory_mb"),
        name=factory.SelfAttribute("..name"),
    )
