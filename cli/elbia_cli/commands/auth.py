"""``elbia auth``: sign in with a token pair, see the current context, switch, renew, sign out."""

import json
import sys

import click
import httpx

from elbia_cli.api import TIMEOUT, invalid_token, renewed, request_token, user_agent
from elbia_cli.config import DEFAULT_CLIENT_ID, DEFAULT_SERVER, Context
from elbia_cli.errors import ApiError, AuthError, CliError, ExitCode
from elbia_cli.output import Column
from elbia_cli.state import State, output_options, pass_state

# Any token may read one of these: 200 (or 403 for a token without resources:read) proves it is valid.
CHECK_PATH = "/v1/regions"
ACCOUNT_GAP = "not shown: no API endpoint names the token's account yet"


def parse_tokens(text: str) -> dict:
    """Tokens from standard input: the JSON ``issue_token --json`` prints, or ``ACCESS [REFRESH]``."""
    text = text.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise click.UsageError(f"Standard input is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise click.UsageError("The JSON on standard input has no access_token.")
        return data
    parts = text.split()
    if not 1 <= len(parts) <= 2:
        raise click.UsageError("Give the access token, then the refresh token, separated by whitespace.")
    return {"access_token": parts[0], "refresh_token": parts[1] if len(parts) == 2 else None}


def check_token(context: Context) -> Context:
    """The context if the server accepts its access token (renewed first if it was refused as expired)."""
    response = _probe(context)
    if invalid_token(response) and context.refresh_token:
        token = request_token(
            context.server,
            {"grant_type": "refresh_token", "refresh_token": context.refresh_token, "client_id": context.client_id},
        )
        context = renewed(context, token)
        response = _probe(context)
    if response.status_code == 401:
        raise AuthError(f"{context.server} refused this access token.")
    if response.is_error and response.status_code != 403:  # 403: valid, but without resources:read
        raise ApiError.from_response(response)
    return context


def _probe(context: Context) -> httpx.Response:
    try:
        return httpx.get(
            context.server + CHECK_PATH,
            headers={"Authorization": f"Bearer {context.access_token}", "User-Agent": user_agent()},
            timeout=TIMEOUT,
        )
    except httpx.TransportError as exc:
        raise CliError(f"Cannot reach {context.server}: {exc}") from None


def masked(token: str | None) -> str | None:
    """A token's prefix and last four characters: enough to recognise it, useless to anyone else."""
    if not token:
        return None
    prefix = token[:7] if token.startswith("elb_") else ""
    return f"{prefix}…{token[-4:]}"


def describe(name: str, context: Context, current: str | None) -> dict:
    """What the config knows of a context, without its secrets."""
    return {
        "context": name,
        "current": name == current,
        "server": context.server,
        "account": None,
        "scopes": context.scopes,
        "expires_at": context.expires_at,
        "renewed_at": context.renewed_at,
        "access_token": masked(context.access_token),
        "refresh_token": masked(context.refresh_token),
        "client_id": context.client_id,
    }


def show(state: State, name: str, context: Context, current: str | None) -> None:
    document = describe(name, context, current)
    printer = state.printer
    if printer.json_mode:
        printer.json(document)
        return
    document["account"] = ACCOUNT_GAP
    if context.scopes is None:
        document["scopes"] = "unknown until the first renewal (`elbia auth renew`)"
    if context.expires_at is None:
        document["expires_at"] = "unknown until the first renewal"
    document.pop("current")
    if printer.quiet:
        printer.text(name)
    else:
        printer.record(document)


@click.group()
def auth():
    """Sign in, see the token in use, switch between contexts (accounts or servers)."""


@auth.command()
@click.option("--server", default=DEFAULT_SERVER, show_default=True, envvar="ELBIA_SERVER", help="The API's base URL.")
@click.option("--name", default="default", show_default=True, help="Name of the context to store the tokens under.")
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Read the tokens from standard input: `manage.py issue_token --json` output, or ACCESS REFRESH.",
)
@click.option("--client-id", default=None, help=f"OAuth client that renews the token (default {DEFAULT_CLIENT_ID}).")
@output_options
@pass_state
def login(state: State, server: str, name: str, token_stdin: bool, client_id: str | None):
    """Check an access token and its refresh token, and store them (file readable by you alone).

    Without --token-stdin, asks for both (the input is not shown). The token is renewed through the
    refresh token whenever it is near expiry or refused as expired; the pair rotates on each renewal.
    """
    if token_stdin:
        tokens = parse_tokens(sys.stdin.read())
    else:
        tokens = {
            "access_token": click.prompt("Access token", hide_input=True).strip(),
            "refresh_token": click.prompt("Refresh token", hide_input=True, default="", show_default=False).strip(),
        }
    context = Context(
        server=server.rstrip("/"),
        access_token=tokens["access_token"],
        refresh_token=tokens.get("refresh_token") or None,
        client_id=client_id or tokens.get("client_id") or DEFAULT_CLIENT_ID,
        expires_at=tokens.get("expires_at"),
        scopes=tokens.get("scopes"),
    )
    context = check_token(context)
    with state.store.locked() as config:
        config.contexts[name] = context
        config.current = name
    state.printer.message(f"Signed in to {context.server} (context '{name}'); config: {state.store.path}")
    show(state, name, context, name)


@auth.command()
@output_options
@pass_state
def status(state: State):
    """Show the context in use: server, scopes, expiry; checks the token with the server (exit 3 if refused)."""
    client = state.client
    try:
        client.request("GET", CHECK_PATH)
    except ApiError as exc:
        if exc.status != 403:  # 403: the token is valid, it only lacks resources:read
            raise
    show(state, client.name, client.context, state.store.load().current)


@auth.command()
@output_options
@pass_state
def renew(state: State):
    """Renew the token now (rotating the refresh token), and show the scopes and expiry the server gave."""
    client = state.client
    client.renew(client.context.access_token)
    show(state, client.name, client.context, state.store.load().current)


@auth.command(name="list")
@output_options
@pass_state
def list_contexts(state: State):
    """List the signed-in contexts."""
    config = state.store.load()
    items = [describe(name, context, config.current) for name, context in sorted(config.contexts.items())]
    columns = [
        Column("CURRENT", lambda item: "*" if item["current"] else ""),
        Column("CONTEXT", "context"),
        Column("SERVER", "server"),
        Column("EXPIRES", "expires_at"),
    ]
    if state.printer.quiet and not state.printer.json_mode:
        for item in items:
            state.printer.text(item["context"])
        return
    state.printer.table(items, columns, empty="No contexts: run `elbia auth login`.")


@auth.command()
@click.argument("name")
@pass_state
def switch(state: State, name: str):
    """Make NAME the current context."""
    with state.store.locked() as config:
        if name not in config.contexts:
            known = ", ".join(sorted(config.contexts)) or "none"
            raise CliError(f"No context named '{name}' (known: {known}).", ExitCode.USAGE)
        config.current = name
    state.printer.message(f"Now using context '{name}'.")


@auth.command()
@click.argument("name", required=False)
@pass_state
def logout(state: State, name: str | None):
    """Revoke the token at the server and forget the context (NAME, or the current one)."""
    with state.store.locked() as config:
        name, context = config.context(name or state.context)
        del config.contexts[name]
        if config.current == name:
            config.current = next(iter(sorted(config.contexts)), None)
    revoked = _revoke(context)
    state.printer.message(f"Signed out of '{name}'" + ("" if revoked else " (the server did not confirm revocation)"))


def _revoke(context: Context) -> bool:
    token = context.refresh_token or context.access_token
    hint = "refresh_token" if context.refresh_token else "access_token"
    try:
        response = httpx.post(
            context.server + "/oauth/revoke_token/",
            data={"token": token, "token_type_hint": hint, "client_id": context.client_id},
            headers={"User-Agent": user_agent()},
            timeout=TIMEOUT,
        )
    except httpx.TransportError:
        return False
    return response.status_code == 200
