"""Dashboard forms for resources: they turn what was typed into the values ``resources.services`` takes.

Choices are offered as lists, but not checked here: the services check every value and their messages
are the ones shown next to the fields (the same sentences the API answers).
"""

from django import forms

from elbia.forms import KeyValueField, OnceForm
from resources.catalog import INSTANCE_TYPES, REGIONS, InstanceType
from resources.validators import DEFAULT_VPC_NAME

DEFAULT_REGION = "us-east-1"
DEFAULT_INSTANCE_TYPE = "t3.micro"
TAGS_HELP = "One key=value per line, e.g. env=production. Keys start with a letter."


def memory_label(memory_mb: int) -> str:
    """``1024`` -> ``"1 GB"``, ``512`` -> ``"512 MB"``."""
    return f"{memory_mb // 1024} GB" if memory_mb % 1024 == 0 else f"{memory_mb} MB"


def instance_type_label(kind: InstanceType) -> str:
    """``t3.micro · 2 vCPUs · 1 GB``: the catalog's figures for an instance type."""
    return f"{kind.name} · {kind.vcpus} vCPU{'s' if kind.vcpus > 1 else ''} · {memory_label(kind.memory_mb)}"


def region_choices() -> list[tuple[str, str]]:
    return [(code, f"{code} · {region.name}") for code, region in REGIONS.items()]


def instance_type_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The catalog's instance types grouped by family (t2, t3, m5, c5)."""
    families: dict[str, list[tuple[str, str]]] = {}
    for kind in INSTANCE_TYPES.values():
        families.setdefault(kind.family, []).append((kind.name, instance_type_label(kind)))
    return list(families.items())


class ComputeCreateForm(OnceForm):
    """A new compute instance: where, how big, in which VPC."""

    name = forms.CharField(required=False, help_text="Optional, e.g. web-1.")
    region = forms.CharField(initial=DEFAULT_REGION, widget=forms.Select(choices=region_choices()))
    instance_type = forms.CharField(
        label="Instance type",
        initial=DEFAULT_INSTANCE_TYPE,
        widget=forms.Select(choices=instance_type_choices()),
        help_text="vCPUs and memory as the catalog (GET /v1/instance-types) lists them.",
    )
    vpc = forms.CharField(
        label="VPC",
        initial=DEFAULT_VPC_NAME,
        widget=forms.Select(),
        help_text="The VPC must be in the instance's region; the region's default VPC is created on first use.",
    )
    tags = KeyValueField(what="tag", help_text=TAGS_HELP)

    def __init__(self, *args, vpcs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["vpc"].widget.choices = [
            (DEFAULT_VPC_NAME, "default · the region's default VPC"),
            *[(vpc.public_id, f"{vpc.name} · {vpc.region} · {vpc.public_id}") for vpc in vpcs],
        ]


class VpcCreateForm(OnceForm):
    """A new VPC: its name, region and address range."""

    name = forms.CharField(required=False, help_text="1-64 letters, digits, '.', '_' or '-', unique in its region.")
    region = forms.CharField(initial=DEFAULT_REGION, widget=forms.Select(choices=region_choices()))
    cidr_block = forms.CharField(
        label="CIDR block",
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "10.0.0.0/16"}),
        help_text="An IPv4 network from /16 to /28; 10.0.0.0/16 when left empty.",
    )
    tags = KeyValueField(what="tag", help_text=TAGS_HELP)


class ResourceEditForm(OnceForm):
    """Rename a resource or replace its tags: what a customer may change after creation."""

    name = forms.CharField(required=False)
    tags = KeyValueField(what="tag", help_text=TAGS_HELP)
