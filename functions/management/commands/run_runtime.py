"""``manage.py run_runtime``: the runner process that executes functions (see functions/runtime/runner.py)."""

import os
import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from functions.runtime.environments import RuntimeUnavailable, check_runtime_dir, host_isolation
from functions.runtime.runner import HOST, RunnerServer


def _unreachable_by_others(directory: Path) -> Path | None:
    """The first folder above ``directory`` that other users cannot traverse (sandboxed users need to)."""
    for folder in [*reversed(directory.resolve().parents), directory.resolve()]:
        if folder.exists() and not os.stat(folder).st_mode & 0o001:
            return folder
    return None


class Command(BaseCommand):
    help = "Run functions: serve invocations on 127.0.0.1:ELBIA_RUNNER_PORT from warm, sandboxed environments."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None, help="Port to listen on (0: any free port).")

    def handle(self, *args, port=None, **options):
        runtime_dir = Path(settings.ELBIA_RUNTIME_DIR)
        runtime_dir.mkdir(parents=True, exist_ok=True)
        isolation = host_isolation()
        try:
            check_runtime_dir()
        except RuntimeUnavailable as error:
            raise CommandError(str(error)) from None
        if isolation["root"]:
            os.chmod(runtime_dir, 0o755)
            blocked = _unreachable_by_others(runtime_dir)
            if blocked is not None:
                raise CommandError(
                    f"ELBIA_RUNTIME_DIR={runtime_dir} is under {blocked}, which the sandbox's users cannot traverse: "
                    "choose a directory every user can reach (e.g. /var/lib/elbia/runtime)."
                )
        server = RunnerServer(settings.ELBIA_RUNNER_PORT if port is None else port)
        shown = (
            "network and /tmp isolated (namespaces)"
            if isolation["namespaces"]
            else f"no namespaces: {isolation['reason']}"
        )
        user = "a user of its own per environment" if isolation["root"] else "the runner's own user (not root)"
        self.stdout.write(f"Runner listening on {HOST}:{server.server_address[1]} ({shown}; {user})")
        self.stdout.flush()

        def stop(signum, frame):
            threading.Thread(target=server.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            server.serve_forever()
        finally:
            server.server_close()
