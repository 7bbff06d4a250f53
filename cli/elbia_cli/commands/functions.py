"""``elbia functions``: list, get, create, deploy a directory, invoke, environment variables, delete."""

import re
import sys
import zipfile
from pathlib import Path

import click

from elbia_cli import archive, invocations
from elbia_cli.commands.common import all_option, limit_option, list_pages, parse_pairs, wait_timeout_option
from elbia_cli.errors import ApiError, CliError, ExitCode
from elbia_cli.output import Column
from elbia_cli.state import State, output_options, pass_state
from elbia_cli.waiting import failure, wait_for

PATH = "/v1/functions"
FUNCTION_ID = re.compile(r"FUNC_\d{10}")
STATUSES = ("created", "deploying", "active", "failed", "deprecated", "deleting", "deleted")
COLUMNS = [
    Column("ID", "id"),
    Column("NAME", "name"),
    Column("RUNTIME", "runtime"),
    Column("STATUS", "status"),
    Column("MEMORY", "memory"),
    Column("REGION", "region"),
    Column("TAGS", "tags"),
    Column("LAST EXECUTED", "last_executed"),
]
function_argument = click.argument("ref", metavar="NAME|ID")


def resolve(state: State, ref: str) -> str:
    """A function's ID from its ID or its name (names are unique in an account)."""
    if FUNCTION_ID.fullmatch(ref):
        return ref
    for page, _ in state.client.pages(PATH, {"limit": 200}):
        for item in page:
            if item.get("name") == ref:
                return item["id"]
    raise CliError(f"No function named '{ref}'.", ExitCode.NOT_FOUND)


def fetch(state: State, function_id: str, *, gone_is_deleted: bool = False) -> dict:
    try:
        return state.client.get(f"{PATH}/{function_id}")
    except ApiError as exc:
        if gone_is_deleted and exc.status == 404:
            return {"id": function_id, "status": "deleted"}
        raise


def settle(state: State, function_id: str, *, done, timeout: float, gone_is_deleted: bool = False) -> dict:
    """Follow the function until ``done`` (or failed) and print it; exit 1 with its reason if it failed."""
    final = wait_for(
        lambda: fetch(state, function_id, gone_is_deleted=gone_is_deleted),
        done=done,
        label=function_id,
        printer=state.printer,
        timeout=timeout,
    )
    if final.get("status") == "failed":
        state.printer.record(final)
        raise failure(final, function_id)
    return final


def is_active(item: dict) -> bool:
    return item.get("status") == "active"


@click.group()
def functions():
    """Serverless functions: create, deploy code, invoke."""


@functions.command(name="list")
@click.option("--status", type=click.Choice(STATUSES), help="Only this status.")
@click.option("--runtime", help='Only this runtime, e.g. "Node.js 20".')
@click.option("--tag", help="Only functions with this tag.")
@limit_option
@all_option
@output_options
@pass_state
def list_functions(state: State, status, runtime, tag, limit, all_pages):
    """List functions, newest first."""
    params = {"status": status, "runtime": runtime, "tag": tag, "limit": limit}
    list_pages(state, PATH, params, COLUMNS, all_pages=all_pages, noun="functions")


@functions.command()
@function_argument
@output_options
@pass_state
def get(state: State, ref: str):
    """Show one function (environment variables by name only)."""
    state.printer.record(fetch(state, resolve(state, ref)))


@functions.command()
@click.argument("name")
@click.option("--runtime", required=True, help='A runtime from GET /v1/runtimes, e.g. "Python 3.12" or python3.12.')
@click.option("--handler", required=True, help="Entry point, e.g. app.handler.")
@click.option("--memory", "memory_mb", type=int, help="Memory in MB (128 to 10240, default 128).")
@click.option("--timeout", "timeout_s", type=int, help="Timeout in seconds (1 to 900, default 3).")
@click.option("--region", help="Region (default us-east-1).")
@click.option("--tag", "tags", multiple=True, help="A tag (repeat for more).")
@click.option("--env", "environment", multiple=True, metavar="KEY=VALUE", help="An environment variable (repeat).")
@click.option("--wait", is_flag=True, help="Follow the deployment until active or failed (exit 1 if failed).")
@wait_timeout_option
@output_options
@pass_state
def create(state: State, name, runtime, handler, memory_mb, timeout_s, region, tags, environment, wait, wait_timeout):
    """Create a function (with a starter handler until you deploy code)."""
    body = {"name": name, "runtime": runtime, "handler": handler}
    optional = {"memory_mb": memory_mb, "timeout_s": timeout_s, "region": region}
    body.update({key: value for key, value in optional.items() if value is not None})
    if tags:
        body["tags"] = list(tags)
    if environment:
        body["environment"] = parse_pairs(environment, "--env")
    created = state.client.request("POST", PATH, json=body, idempotency_key=True).json()
    if wait:
        state.printer.message(f"Created {created['id']}; waiting until it is active.")
        created = settle(state, created["id"], done=is_active, timeout=wait_timeout)
    state.printer.record(created)


@functions.command()
@click.argument("source", metavar="DIR|FILE.zip", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--function", "ref", metavar="NAME|ID", help="The function to deploy to (default: the directory's or file's name)."
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Follow the deployment until active or failed (exit 1 if failed), or return once uploaded.",
)
@wait_timeout_option
@output_options
@pass_state
def deploy(state: State, source: Path, ref: str | None, wait: bool, wait_timeout: float):
    """Upload a function's code: DIR zipped reproducibly (skipping what .elbiaignore names), or a ready FILE.zip.

    Waits until the function is active again and prints it with its code_sha256 (with --quiet, the hash alone).
    """
    data, what = _deploy_archive(source)
    if len(data) > archive.MAX_ARCHIVE_BYTES:
        raise CliError(f"The archive is {len(data):,} bytes; the API takes at most 50 MB.", ExitCode.USAGE)
    digest = archive.sha256(data)
    ref = ref or (source.resolve().name if source.is_dir() else source.stem)
    function_id = resolve(state, ref)
    state.printer.message(f"Uploading {what} ({len(data):,} bytes, sha256 {digest}) to {function_id}.")
    response = state.client.request(
        "PUT", f"{PATH}/{function_id}/code", content=data, headers={"Content-Type": "application/zip"}
    )
    uploaded = response.json() if response.content else {}
    uploaded = uploaded if isinstance(uploaded, dict) else {}
    expected = uploaded.get("code_sha256") or digest  # the server's hash of what it stored, when it says it

    def deployed(item: dict) -> bool:
        return is_active(item) and item.get("code_sha256", expected) == expected

    final = uploaded or fetch(state, function_id)
    if wait:
        final = settle(state, function_id, done=deployed, timeout=wait_timeout)
    if state.printer.quiet and not state.printer.json_mode:
        state.printer.text(final.get("code_sha256") or expected)
        return
    state.printer.record(final)
    done = "Deployed" if wait else "Uploaded (deploying)"
    state.printer.message(f"{done} {final.get('name', ref)}: code sha256 {final.get('code_sha256') or expected}")


def _deploy_archive(source: Path) -> tuple[bytes, str]:
    """The ZIP to upload from ``source`` (a directory to zip, or a .zip file as it is) and what it holds, in words."""
    if source.is_dir():
        files = archive.included_files(source)
        if not files:
            raise click.UsageError(f"Nothing to deploy: {source} has no file that .elbiaignore leaves in.")
        return archive.build_archive(source), f"{len(files)} files"
    if not zipfile.is_zipfile(source):
        raise click.UsageError(f"{source} is neither a directory nor a ZIP archive.")
    return source.read_bytes(), source.name


@functions.command()
@function_argument
@click.option("--data", metavar="JSON|@FILE|@-", help="The event: JSON text, @file, or @- for standard input ({}).")
@click.option("--logs", is_flag=True, help="Print the function's log output (its last 4 KB) on standard error.")
@click.option("--async", "asynchronous", is_flag=True, help="Queue the invocation and print its ID.")
@output_options
@pass_state
def invoke(state: State, ref: str, data: str | None, logs: bool, asynchronous: bool):
    """Invoke a function and print its result; exit status 1 when the function raised (or timed out)."""
    event = invocations.read_event(data, sys.stdin)
    function_id = resolve(state, ref)
    headers = {"Content-Type": "application/json"}
    if asynchronous:
        headers["X-Elbia-Invocation-Type"] = "Event"
    response = state.client.request(
        "POST", f"{PATH}/{function_id}/invocations", content=event, headers=headers, idempotency_key=True
    )
    if asynchronous:
        queued = response.json()
        state.printer.record(queued)
        return
    code = invocations.render(state.printer, invocations.Invocation.from_response(response), show_logs=logs)
    if code:
        raise click.exceptions.Exit(int(code))


@functions.group()
def env():
    """A function's environment variables (values are write-only: the API lists names)."""


@env.command(name="list")
@function_argument
@output_options
@pass_state
def env_list(state: State, ref: str):
    """List the names of a function's environment variables."""
    names = fetch(state, resolve(state, ref)).get("environment") or []
    if state.printer.json_mode:
        state.printer.json(names)
    else:
        for name in names:
            state.printer.text(name)


redeploy_wait_option = click.option("--wait", is_flag=True, help="Follow the redeployment until active or failed.")


@env.command(name="set")
@function_argument
@click.argument("pairs", nargs=-1, required=True, metavar="KEY=VALUE...")
@redeploy_wait_option
@wait_timeout_option
@output_options
@pass_state
def env_set(state: State, ref: str, pairs, wait: bool, wait_timeout: float):
    """Set environment variables (the others stay); the function redeploys."""
    patch_environment(state, ref, parse_pairs(pairs, "KEY=VALUE"), wait=wait, timeout=wait_timeout)


@env.command(name="unset")
@function_argument
@click.argument("names", nargs=-1, required=True, metavar="KEY...")
@redeploy_wait_option
@wait_timeout_option
@output_options
@pass_state
def env_unset(state: State, ref: str, names, wait: bool, wait_timeout: float):
    """Remove environment variables; the function redeploys."""
    patch_environment(state, ref, dict.fromkeys(names), wait=wait, timeout=wait_timeout)


def patch_environment(state: State, ref: str, patch: dict, *, wait: bool, timeout: float) -> None:
    """A merge patch: a name given a string is set, one given null is removed."""
    function_id = resolve(state, ref)
    function = state.client.request("PATCH", f"{PATH}/{function_id}", json={"environment": patch}).json()
    if wait:
        function = settle(state, function_id, done=is_active, timeout=timeout)
    state.printer.record(function)


@functions.command()
@function_argument
@click.option("--wait", is_flag=True, help="Follow the deletion until deleted.")
@wait_timeout_option
@output_options
@pass_state
def delete(state: State, ref: str, wait: bool, wait_timeout: float):
    """Delete a function and its resource."""
    function_id = resolve(state, ref)
    deleting = state.client.request("DELETE", f"{PATH}/{function_id}").json()
    if wait:
        deleting = settle(
            state,
            function_id,
            done=lambda item: item.get("status") == "deleted",
            timeout=wait_timeout,
            gone_is_deleted=True,
        )
    state.printer.record(deleting)
