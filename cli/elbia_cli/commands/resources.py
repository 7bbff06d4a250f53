"""``elbia resources``: list, get, create (and wait), rename, tag, delete (and wait)."""

import click

from elbia_cli.commands.common import (
    all_option,
    expand_param,
    limit_option,
    list_pages,
    parse_pairs,
    wait_timeout_option,
)
from elbia_cli.output import Column
from elbia_cli.state import State, output_options, pass_state
from elbia_cli.waiting import failure, wait_for

PATH = "/v1/resources"
TYPES = ("compute", "function", "vpc")
STATUSES = ("pending", "provisioning", "active", "failed", "deleting", "deleted")
COLUMNS = [
    Column("ID", "id"),
    Column("NAME", "name"),
    Column("TYPE", "type"),
    Column("REGION", "region"),
    Column("STATUS", "status"),
    Column("INSTANCE TYPE", "instance_type"),
    Column("VPC", "vpc"),
    Column("CREATED", "created_at"),
]
expand_option = click.option(
    "--expand", multiple=True, metavar="vpc,function", help="Replace IDs by whole objects: vpc, function."
)


def fetch(state: State, resource_id: str, expand: str | None = None) -> dict:
    return state.client.get(f"{PATH}/{resource_id}", expand=expand)


def settle(state: State, item: dict, *, wanted: str, timeout: float) -> dict:
    """Follow the resource until it is ``wanted`` (or failed), print it, and exit 1 with its reason if it failed."""
    resource_id = item["id"]
    final = wait_for(
        lambda: fetch(state, resource_id),
        done=lambda current: current.get("status") == wanted,
        label=resource_id,
        printer=state.printer,
        timeout=timeout,
    )
    state.printer.record(final)
    if final.get("status") != wanted:
        raise failure(final, resource_id)
    return final


@click.group()
def resources():
    """Compute instances, VPCs and the compute behind functions."""


@resources.command(name="list")
@click.option("--type", "type_", type=click.Choice(TYPES), help="Only this type.")
@click.option("--region", help="Only this region, e.g. us-east-1.")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status (deleted ones show only when asked).")
@click.option(
    "--filter", "filter_", metavar="JSON", help='JSON filter, e.g. \'{"tags.env": "prod"}\' (see the API docs).'
)
@expand_option
@limit_option
@all_option
@output_options
@pass_state
def list_resources(state: State, type_, region, status, filter_, expand, limit, all_pages):
    """List resources, newest first."""
    params = {
        "type": type_,
        "region": region,
        "status": status,
        "filter": filter_,
        "expand": expand_param(expand),
        "limit": limit,
    }
    list_pages(state, PATH, params, COLUMNS, all_pages=all_pages, noun="resources")


@resources.command()
@click.argument("resource_id", metavar="ID")
@expand_option
@output_options
@pass_state
def get(state: State, resource_id: str, expand):
    """Show one resource."""
    state.printer.record(fetch(state, resource_id, expand_param(expand)))


@resources.command()
@click.option("--region", required=True, help="AWS region code, e.g. us-east-1 (see GET /v1/regions).")
@click.option("--instance-type", help="Instance type for compute, e.g. t3.micro.")
@click.option("--vpc", default="default", show_default=True, help="VPC name or RES_ ID (compute).")
@click.option("--type", "type_", type=click.Choice(["compute", "vpc"]), default="compute", show_default=True)
@click.option("--name", help="A name (required for a VPC).")
@click.option("--cidr-block", help="The VPC's CIDR block, e.g. 10.0.0.0/16.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag (repeat for more).")
@click.option("--wait", is_flag=True, help="Follow the lifecycle until active or failed (exit 1 if failed).")
@wait_timeout_option
@output_options
@pass_state
def create(state: State, region, instance_type, vpc, type_, name, cidr_block, tags, wait, wait_timeout):
    """Create a compute instance (or, with --type vpc, a VPC)."""
    if type_ == "compute":
        if not instance_type:
            raise click.UsageError("--instance-type is required for compute resources.")
        body = {"region": region, "instance_type": instance_type, "vpc": vpc}
    else:
        if not name:
            raise click.UsageError("--name is required for a VPC.")
        body = {"type": "vpc", "region": region}
        if cidr_block:
            body["cidr_block"] = cidr_block
    if name:
        body["name"] = name
    if tags:
        body["tags"] = parse_pairs(tags, "--tag")
    created = state.client.request("POST", PATH, json=body, idempotency_key=True).json()
    if not wait:
        state.printer.record(created)
        return
    state.printer.message(f"Created {created['id']}; waiting until it is active.")
    settle(state, created, wanted="active", timeout=wait_timeout)


@resources.command()
@click.argument("resource_id", metavar="ID")
@click.argument("name")
@output_options
@pass_state
def rename(state: State, resource_id: str, name: str):
    """Give a resource a new name."""
    state.printer.record(state.client.request("PATCH", f"{PATH}/{resource_id}", json={"name": name}).json())


@resources.command()
@click.argument("resource_id", metavar="ID")
@click.argument("tags", nargs=-1, metavar="[KEY=VALUE]...")
@click.option("--remove", multiple=True, metavar="KEY", help="Remove this tag (repeat for more).")
@click.option("--replace", is_flag=True, help="Replace all tags by those given instead of adding to them.")
@output_options
@pass_state
def tag(state: State, resource_id: str, tags, remove, replace):
    """Add or change tags (KEY=VALUE), remove some (--remove KEY), or replace them all (--replace)."""
    changes = parse_pairs(tags, "KEY=VALUE")
    if not (changes or remove or replace):
        raise click.UsageError("Give tags as KEY=VALUE, --remove KEY, or --replace.")
    current = {} if replace else dict(fetch(state, resource_id).get("tags") or {})
    current.update(changes)
    for key in remove:
        current.pop(key, None)
    state.printer.record(state.client.request("PATCH", f"{PATH}/{resource_id}", json={"tags": current}).json())


@resources.command()
@click.argument("resource_id", metavar="ID")
@click.option("--wait", is_flag=True, help="Follow the deletion until deleted (exit 1 if it failed).")
@wait_timeout_option
@output_options
@pass_state
def delete(state: State, resource_id: str, wait: bool, wait_timeout: float):
    """Delete a resource (a VPC only once nothing uses it)."""
    deleting = state.client.request("DELETE", f"{PATH}/{resource_id}").json()
    if not wait:
        state.printer.record(deleting)
        return
    state.printer.message(f"Deleting {resource_id}.")
    settle(state, deleting, wanted="deleted", timeout=wait_timeout)
