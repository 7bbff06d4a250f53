"""What ``elbia`` prints: tables for people (colour only on a terminal), the API's JSON for scripts, or IDs alone.

Results go to standard output; messages, live status lines and errors to standard error, so that a
script reading ``--output json`` or ``--quiet`` output gets nothing else.
"""

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from elbia_cli.errors import ApiError, CliError

STATUS_STYLES = {
    "active": "green",
    "paid": "green",
    "failed": "red",
    "void": "red",
    "deleted": "dim",
    "deprecated": "dim",
}
TRANSIENT_STYLE = "yellow"  # pending, provisioning, created, deploying, deleting, open
PIPE_WIDTH = 1000


@dataclass(frozen=True)
class Column:
    """A table column: its header and the field it shows (a key, or a function of the object)."""

    header: str
    field: str | Callable[[dict], Any]

    def value(self, item: dict) -> Any:
        return self.field(item) if callable(self.field) else item.get(self.field)


def cell(value: Any, key: str = "") -> Text:
    """A value as table text; never read as Rich markup (names and tags are the user's own text)."""
    if value is None or value == "" or value == [] or value == {}:
        return Text("-", style="dim")
    if isinstance(value, bool):
        return Text("yes" if value else "no")
    if isinstance(value, dict):
        if "id" in value:  # an expanded object: its id and name
            return Text(" ".join(str(value[part]) for part in ("id", "name") if value.get(part)))
        return Text(", ".join(f"{name}={item}" for name, item in value.items()))
    if isinstance(value, list):
        return Text(", ".join(str(item) for item in value))
    text = str(value)
    if key == "status":
        return Text(text, style=STATUS_STYLES.get(text, TRANSIENT_STYLE))
    return Text(text)


class Printer:
    """Prints results and messages as ``--output`` and ``--quiet`` ask."""

    def __init__(self, output: str = "table", quiet: bool = False):
        self.output = output
        self.quiet = quiet
        self.out = Console(highlight=False)
        if not self.out.is_terminal and "COLUMNS" not in os.environ:
            self.out.width = PIPE_WIDTH  # a table piped to a file or a program keeps one row a line
        self.err = Console(stderr=True, highlight=False)

    @property
    def json_mode(self) -> bool:
        return self.output == "json"

    def json(self, data: Any) -> None:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def text(self, text: str) -> None:
        """Plain result text on standard output, as it is."""
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def table(self, items: list[dict], columns: list[Column], *, empty: str = "Nothing to show.") -> None:
        """A list: the API's array (json), one ID per line (quiet), or a table."""
        if self.json_mode:
            self.json(items)
        elif self.quiet:
            for item in items:
                self.text(str(item.get("id", "")))
        elif not items:
            self.message(empty)
        else:
            table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
            for column in columns:
                table.add_column(column.header, overflow="fold")
            for item in items:
                table.add_row(*(cell(column.value(item), column.field) for column in columns))
            self.out.print(table)

    def record(self, item: dict, *, fields: list[str] | None = None) -> None:
        """One object: the API's object (json), its ID (quiet), or its fields, one a line."""
        if self.json_mode:
            self.json(item)
        elif self.quiet:
            self.text(str(item.get("id", "")))
        else:
            table = Table(box=None, show_header=False, pad_edge=False)
            table.add_column(style="bold")
            table.add_column(overflow="fold")
            for key in fields or list(item):
                table.add_row(key, cell(item.get(key), key))
            self.out.print(table)

    def message(self, text: str, style: str | None = None) -> None:
        """A message for people (standard error); ``--quiet`` silences it."""
        if not self.quiet:
            self.err.print(Text(text, style=style or ""), soft_wrap=True)

    def error(self, error: CliError) -> None:
        """An error: the API's message and request id (json: the API's error document), on standard error."""
        if self.json_mode:
            sys.stderr.write(json.dumps(error.document(), indent=2, ensure_ascii=False) + "\n")
            return
        line = Text("Error: ", style="bold red") + Text(error.message)
        if isinstance(error, ApiError) and error.request_id:
            line += Text(f" (request {error.request_id})", style="dim")
        self.err.print(line, soft_wrap=True)
        for detail in error.details:
            self.err.print(Text(f"  {detail}"), soft_wrap=True)

    @contextmanager
    def live_status(self, label: str) -> Iterator[Callable[[str], None]]:
        """``show(status)`` as one live line on a terminal, or one line per change elsewhere; silent with --quiet."""
        started = time.monotonic()
        last = [None]

        def line(status: str) -> Text:
            return Text(f"{label}: ") + cell(status, "status") + Text(f" ({time.monotonic() - started:.1f} s)", "dim")

        if self.quiet:
            yield lambda status: None
        elif self.err.is_terminal:
            with self.err.status(line("…")) as spinner:

                def update(status: str) -> None:
                    last[0] = status
                    spinner.update(line(status))

                yield update
            self.err.print(line(last[0] or "…"), soft_wrap=True)  # the spinner's last state stays on screen
        else:

            def show(status: str) -> None:
                if status != last[0]:
                    last[0] = status
                    self.err.print(line(status), soft_wrap=True)

            yield show
