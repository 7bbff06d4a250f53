"""Invoking a function: the event to send, and what the answer's headers and body say.

``POST /v1/functions/{id}/invocations`` answers 200 whether or not the function raised; a raised error
(or a timeout) is marked by ``X-Elbia-Function-Error`` and the body is then ``{"errorType",
"errorMessage", "trace"}``. ``X-Elbia-Log-Result`` holds the last 4 KB of the function's output, base64.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import click
import httpx

from elbia_cli.errors import ExitCode
from elbia_cli.output import Printer

UNDECODABLE_LOG = "(the log output could not be decoded)"


def read_event(data: str | None, stdin: IO[str]) -> bytes:
    """The event to send: ``{}`` by default, JSON text, ``@file`` or ``@-`` (standard input); checked as JSON."""
    if data is None:
        return b"{}"
    if data == "@-":
        text = stdin.read()
    elif data.startswith("@"):
        try:
            text = Path(data[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise click.BadParameter(f"cannot read {data[1:]}: {exc.strerror}", param_hint="--data") from None
    else:
        text = data
    try:
        json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not valid JSON ({exc})", param_hint="--data") from None
    return text.encode("utf-8")


def decode_log(header: str | None) -> str | None:
    """The function's log output from ``X-Elbia-Log-Result`` (base64 of UTF-8 text; the tail may cut a character)."""
    if not header:
        return None
    try:
        raw = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        return UNDECODABLE_LOG
    return raw.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Invocation:
    """One synchronous invocation's outcome, as the API answered it."""

    invocation_id: str | None
    duration_ms: str | None
    billed_duration_ms: str | None
    function_error: str | None
    log: str | None
    body: str

    @classmethod
    def from_response(cls, response: httpx.Response) -> "Invocation":
        headers = response.headers
        return cls(
            invocation_id=headers.get("X-Elbia-Invocation-Id"),
            duration_ms=headers.get("X-Elbia-Duration-Ms"),
            billed_duration_ms=headers.get("X-Elbia-Billed-Duration-Ms"),
            function_error=headers.get("X-Elbia-Function-Error"),
            log=decode_log(headers.get("X-Elbia-Log-Result")),
            body=response.text,
        )

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILURE if self.function_error else ExitCode.OK

    def error_line(self) -> str:
        """``errorType: errorMessage`` of a raised error."""
        try:
            error = json.loads(self.body)
        except ValueError:
            error = None
        if not isinstance(error, dict):
            return self.function_error or ""
        return f"{error.get('errorType', 'Error')}: {error.get('errorMessage', '')}"


def render(printer: Printer, invocation: Invocation, *, show_logs: bool) -> ExitCode:
    """Print the result on standard output (json: the body unchanged), logs and errors on standard error."""
    if printer.json_mode:
        printer.text(invocation.body)
    else:
        try:
            printer.text(json.dumps(json.loads(invocation.body), indent=None if printer.quiet else 2))
        except ValueError:
            printer.text(invocation.body)
    if show_logs and invocation.log is not None:
        printer.err.print(invocation.log.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
    if invocation.invocation_id:
        billed = f", billed {invocation.billed_duration_ms} ms" if invocation.billed_duration_ms else ""
        printer.message(f"Invocation {invocation.invocation_id}: {invocation.duration_ms} ms{billed}", style="dim")
    if invocation.function_error:
        printer.err.print(
            f"The function raised ({invocation.function_error}): {invocation.error_line()}",
            style="bold red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    return invocation.exit_code
