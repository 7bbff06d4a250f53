"""The ``elbia`` command: global options, the command groups, and errors turned into exit codes."""

import sys

import click
from click.shell_completion import get_completion_class

from elbia_cli import __version__
from elbia_cli.commands import auth, billing, functions, resources
from elbia_cli.errors import CliError, ExitCode
from elbia_cli.output import Printer
from elbia_cli.state import State, output_options

PROG = "elbia"


class ElbiaGroup(click.Group):
    """The root group: an error raised by any command is printed as ``--output`` asks and sets the exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CliError as exc:
            ctx.ensure_object(State).printer.error(exc)
            ctx.exit(int(exc.exit_code))


@click.group(cls=ElbiaGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "-c",
    "--context",
    "context_name",
    envvar="ELBIA_CONTEXT",
    help="Use this signed-in context instead of the current one.",
)
@click.option(
    "--debug", is_flag=True, envvar="ELBIA_DEBUG", help="Show each HTTP request on standard error (no secrets)."
)
@click.version_option(__version__, prog_name=PROG)
@output_options
@click.pass_context
def cli(ctx: click.Context, context_name: str | None, debug: bool):
    """The Elbia Lambda command line: resources, functions and billing through the public API.

    Start with `elbia auth login`. Exit status: 0 success, 1 failure of what was asked (a resource
    that failed, a function that raised), 2 usage error, 3 authentication or scope error, 4 not found.
    """
    state = ctx.ensure_object(State)
    state.context = context_name
    state.debug = debug


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh"]))
def completion(shell: str):
    """Print the shell completion script: add eval "$(elbia completion bash)" (or zsh) to your shell's rc file."""
    completion_class = get_completion_class(shell)
    click.echo(completion_class(cli, {}, PROG, "_ELBIA_COMPLETE").source())


cli.add_command(auth.auth)
cli.add_command(resources.resources)
cli.add_command(functions.functions)
cli.add_command(billing.usage)
cli.add_command(billing.invoices)


def main() -> None:
    """The console script: run the command, print any error, exit with its code."""
    try:
        code = cli.main(prog_name=PROG, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        code = ExitCode.FAILURE
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code  # usage errors are 2
    except CliError as exc:  # raised outside any command (each command's are printed by the root group)
        Printer().error(exc)
        code = exc.exit_code
    except KeyboardInterrupt:
        code = 130
    sys.exit(int(code) if isinstance(code, int) else 0)
