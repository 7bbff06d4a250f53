"""Following a lifecycle (``--wait``): poll the object until it settles, with a live status line."""

import time
from collections.abc import Callable

from elbia_cli.errors import CliError, ExitCode
from elbia_cli.output import Printer

DEFAULT_TIMEOUT = 600.0
FIRST_INTERVAL = 0.25
MAX_INTERVAL = 1.0


def wait_for(
    fetch: Callable[[], dict],
    *,
    done: Callable[[dict], bool],
    label: str,
    printer: Printer,
    timeout: float = DEFAULT_TIMEOUT,
    failed: tuple[str, ...] = ("failed",),
) -> dict:
    """Poll ``fetch()`` until ``done(obj)`` or its status is in ``failed``; the last object seen.

    Polls quickly at first (lifecycles often take seconds), then every MAX_INTERVAL seconds.
    """
    deadline = time.monotonic() + timeout
    interval = FIRST_INTERVAL
    with printer.live_status(label) as show:
        while True:
            item = fetch()
            status = str(item.get("status"))
            show(status)
            if done(item) or status in failed:
                return item
            if time.monotonic() >= deadline:
                raise CliError(f"Gave up waiting after {timeout:g} s: {label} is still {status}.", ExitCode.FAILURE)
            time.sleep(interval)
            interval = min(interval * 1.5, MAX_INTERVAL)


def failure(item: dict, label: str) -> CliError:
    """The error to exit with when an object ended ``failed``: its reason, as the API gives it."""
    return CliError(f"{label} failed: {item.get('failure_reason') or 'no reason given'}", ExitCode.FAILURE)
