"""Pieces the command groups share: list paging, key=value arguments, the wait options."""

import click

from elbia_cli.output import Column
from elbia_cli.state import State
from elbia_cli.waiting import DEFAULT_TIMEOUT

limit_option = click.option(
    "--limit", type=click.IntRange(1, 200), default=None, help="Page size (the server's default is 50, at most 200)."
)
all_option = click.option("--all", "all_pages", is_flag=True, help="Follow the `next` links through every page.")
wait_timeout_option = click.option(
    "--wait-timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds to wait with --wait before giving up (exit 1).",
)


def list_pages(
    state: State, path: str, params: dict, columns: list[Column], *, all_pages: bool, noun: str
) -> list[dict]:
    """Print a list: one page, or with ``all_pages`` every page, following ``rel="next"`` links (never offsets)."""
    items: list[dict] = []
    more = None
    for page, link in state.client.pages(path, params, follow=all_pages):
        items.extend(page)
        more = link
    state.printer.table(items, columns, empty=f"No {noun}.")
    if more and not all_pages:
        state.printer.message(f"More {noun} on further pages: add --all to list them all.", style="dim")
    return items


def parse_pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    """``("env=prod", "team=web")`` -> ``{"env": "prod", "team": "web"}``; a usage error for anything else."""
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"'{value}' is not KEY=VALUE.", param_hint=what)
        pairs[key] = item
    return pairs


def expand_param(values: tuple[str, ...]) -> str | None:
    """``--expand vpc --expand function`` or ``--expand vpc,function`` -> ``"vpc,function"``."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    return ",".join(names) or None
