"""``elbia usage`` and ``elbia invoices``: the month's usage and cost, invoices and their PDFs."""

import os
import sys
import tempfile
from pathlib import Path

import click

from elbia_cli.commands.common import all_option, limit_option, list_pages
from elbia_cli.errors import CliError
from elbia_cli.output import Column
from elbia_cli.state import State, output_options, pass_state

INVOICES = "/v1/billing/invoices"
SUMMARY_FIELDS = ["period", "total_executions", "gigabytes_hour", "current_month_cost"]
LINE_COLUMNS = [
    Column("DESCRIPTION", "description"),
    Column("QUANTITY", "quantity"),
    Column("UNIT", "unit"),
    Column("UNIT PRICE", lambda line: f"{line.get('unit_price')} / {line.get('price_unit')}"),
    Column("AMOUNT", "amount"),
]
INVOICE_COLUMNS = [
    Column("ID", "id"),
    Column("PERIOD", "period"),
    Column("DATE", "date"),
    Column("AMOUNT", "amount"),
    Column("STATUS", "status"),
]


def record_with_lines(state: State, item: dict, fields: list[str], lines_key: str) -> None:
    """An object and its line items: the API's object (json), or its fields then a table of its lines."""
    printer = state.printer
    if printer.json_mode or printer.quiet:
        printer.record(item)
        return
    printer.record(item, fields=fields)
    printer.out.print()
    printer.table(item.get(lines_key) or [], LINE_COLUMNS, empty="No usage lines.")


@click.command()
@click.option("--month", metavar="YYYY-MM", help="The month (UTC); default the current one.")
@output_options
@pass_state
def usage(state: State, month: str | None):
    """The month's executions, GB-hours and cost, with the breakdown by line."""
    record_with_lines(state, state.client.get("/v1/usage", month=month), SUMMARY_FIELDS, "breakdown")


@click.group()
def invoices():
    """Invoices (one per closed month) and their PDFs."""


@invoices.command(name="list")
@click.option("--status", type=click.Choice(["open", "paid", "void"]), help="Only this status.")
@limit_option
@all_option
@output_options
@pass_state
def list_invoices(state: State, status, limit, all_pages):
    """List invoices, newest month first."""
    params = {"status": status, "limit": limit}
    list_pages(state, INVOICES, params, INVOICE_COLUMNS, all_pages=all_pages, noun="invoices")


@invoices.command()
@click.argument("invoice_id", metavar="ID")
@output_options
@pass_state
def get(state: State, invoice_id: str):
    """Show an invoice and its line items."""
    invoice = state.client.get(f"{INVOICES}/{invoice_id}")
    fields = ["id", "period", "date", "amount", "currency", "status"]
    record_with_lines(state, invoice, fields, "lines")


@invoices.command()
@click.argument("invoice_id", metavar="ID")
@click.option(
    "-f",
    "--file",
    "target",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to save it (default ID.pdf; - for stdout).",
)
@output_options
@pass_state
def download(state: State, invoice_id: str, target: Path | None):
    """Save an invoice's PDF (through its signed link; no token is sent there)."""
    invoice = state.client.get(f"{INVOICES}/{invoice_id}")
    response = state.client.download(invoice["pdf_url"])
    document = response.content
    if not document.startswith(b"%PDF-"):
        kind = response.headers.get("Content-Type", "unknown")
        raise CliError(f"The invoice link did not answer a PDF (Content-Type: {kind}).")
    if str(target) == "-":
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
        return
    target = target or Path(f"{invoice['id']}.pdf")
    save(document, target)
    printer = state.printer
    if printer.json_mode:
        printer.json(invoice)
    elif printer.quiet:
        printer.text(str(target))
    else:
        printer.text(f"Saved {target} ({len(document):,} bytes)")


def save(data: bytes, target: Path) -> None:
    """Write the whole file or nothing: a temporary file beside it, renamed over it."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o666 & ~umask)  # as any new file of the user's (mkstemp makes it 0600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
