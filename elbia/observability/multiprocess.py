"""The metrics directory of a server process with several workers (gunicorn, a prefork Celery worker).

Each worker process writes its metric values to files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape adds them
up. ``prepare`` chooses and empties that directory as the server starts, before any metric exists: the
Prometheus client chooses its multiprocess mode when it is first imported, so this module imports none of it.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The temporary directory ``prepare`` created in this process, removed when the server stops.
_temporary: list[Path] = []


def is_worker_command(argv: list[str]) -> bool:
    """Whether this process is ``celery ... worker`` (``python -m celery`` included)."""
    program = Path(argv[0]) if argv else Path()
    return "celery" in (program.name, program.parent.name) and "worker" in argv[1:]


def prepare(kind: str) -> tuple[Path, bool]:
    """This server's metrics directory, emptied; and whether it was created here (a temporary one to remove).

    ``PROMETHEUS_MULTIPROC_DIR`` when set: emptied, since a previous run's values must not add up with this
    one's (so one directory per server process: a web server and a worker never share one). Else a new
    temporary directory, exported to the worker processes through the environment.
    """
    if "prometheus_client.values" in sys.modules:
        raise RuntimeError(
            "The Prometheus client was imported before its multiprocess directory was chosen: "
            "elbia.observability.multiprocess.prepare must run first."
        )
    configured = os.environ.get(MULTIPROC_ENV)
    if not configured:
        path = Path(tempfile.mkdtemp(prefix=f"elbia-metrics-{kind}-"))
        os.environ[MULTIPROC_ENV] = str(path)
        _temporary.append(path)
        return path, True
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    for entry in path.iterdir():
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return path, False


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def remove_temporary() -> None:
    while _temporary:
        remove(_temporary.pop())
