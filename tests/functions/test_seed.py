"""seed_demo creates a few functions through the services, once."""

import pytest
from django.core.management import call_command

from functions.models import Function, FunctionStatus, FunctionTag

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_demo_functions_once(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    functions = {function.name: function for function in Function.objects.select_related("resource")}
    assert set(functions) == {"user-authentication", "image-resize", "nightly-report"}
    assert all(function.status == FunctionStatus.CREATED for function in functions.values())
    assert all(function.resource.type == "function" for function in functions.values())
    assert functions["image-resize"].resource.memory_mb == 1024
    assert set(FunctionTag.objects.filter(function=functions["user-authentication"]).values_list("tag", flat=True)) == {
        "auth",
        "team:identity",
    }
    assert "Created demo functions" in capsys.readouterr().out
