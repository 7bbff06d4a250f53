"""What every command shares: the output settings, the context chosen, and (lazily) the API client."""

from dataclasses import dataclass, field

import click

from elbia_cli.api import Client
from elbia_cli.config import ConfigStore
from elbia_cli.output import Printer

OUTPUTS = ("table", "json")


@dataclass
class State:
    """Set by the root group's options and by each command's ``--output``/``--quiet``."""

    output: str = "table"
    quiet: bool = False
    context: str | None = None
    debug: bool = False
    store: ConfigStore = field(default_factory=ConfigStore)
    _client: Client | None = None

    @property
    def printer(self) -> Printer:
        return Printer(self.output, self.quiet)

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.store, self.context, debug=self.debug)
        return self._client


pass_state = click.make_pass_decorator(State, ensure=True)


def _setter(name: str):
    def callback(ctx: click.Context, param: click.Parameter, value):
        if value not in (None, False):
            setattr(ctx.ensure_object(State), name, value)
        return value

    return callback


def output_options(command):
    """``--output`` and ``--quiet`` on a command too, so they work after it as well as before it."""
    command = click.option(
        "-o",
        "--output",
        type=click.Choice(OUTPUTS),
        default=None,
        expose_value=False,
        callback=_setter("output"),
        help="table (default) or json (the API's objects unchanged).",
    )(command)
    return click.option(
        "-q",
        "--quiet",
        is_flag=True,
        default=False,
        expose_value=False,
        callback=_setter("quiet"),
        help="Print only IDs (or nothing); no messages or status lines.",
    )(command)
