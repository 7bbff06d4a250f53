"""``make run``: the whole service on one machine, with the demo account and a token printed once it answers."""

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from importlib import import_module

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from elbia.accounts.management.commands.seed_demo import issue_demo_token

HEALTH_TIMEOUT = 120.0
STARTUP_MODULES = ("gunicorn.app.wsgiapp", "celery.apps.worker", "celery.apps.beat", "kombu.transport.sqlalchemy")
POLL_INTERVAL = 0.1


def warm_up() -> None:
    """Import what web, worker and beat import as they start, so it is compiled once here, not in each of them."""
    from elbia.celery import app

    for module in (settings.ROOT_URLCONF, *STARTUP_MODULES):
        import_module(module)
    app.loader.import_default_modules()


def port_is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (connections of a previous run waiting to close do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = (
        "Migrate, start every process of the Procfile (web, worker, beat, runtime) under honcho, seed the demo "
        "account meanwhile, and print a demo token and the curl to try it once /healthz answers. Ctrl-C stops them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, **options):
        port = options["port"]
        base_url = f"http://127.0.0.1:{port}"
        if not port_is_free(port):  # else another server's /healthz could pass for ours
            raise CommandError(f"Port {port} is in use on 127.0.0.1: choose another, e.g. `make run PORT={port + 1}`.")
        call_command("migrate", interactive=False, stdout=self.stdout)
        warm_up()
        environment = {
            **os.environ,
            # The Procfile's commands (gunicorn, celery) are this virtualenv's.
            "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}",
            # gunicorn loads the application once and forks its workers from it: ready sooner, on fewer CPU seconds.
            "GUNICORN_CMD_ARGS": f"--preload {os.environ.get('GUNICORN_CMD_ARGS', '')}".strip(),
        }
        # honcho runs in a session of its own: a Ctrl-C reaches it once, forwarded from here.
        honcho = subprocess.Popen(  # noqa: S603 (a fixed command)
            [sys.executable, "-m", "honcho", "start", "--port", str(port)],
            cwd=settings.BASE_DIR,
            env=environment,
            start_new_session=True,
        )
        stopping = False

        def forward(signum, frame):
            nonlocal stopping
            stopping = True
            if honcho.poll() is None:
                honcho.send_signal(signum)

        signal.signal(signal.SIGINT, forward)
        signal.signal(signal.SIGTERM, forward)
        try:
            call_command("seed_demo", no_token=True, stdout=self.stdout)
            if self.wait_until_healthy(honcho, port, lambda: stopping):
                sys.stdout.write(issue_demo_token(base_url=base_url) + "\n")
                sys.stdout.flush()
            elif not stopping and honcho.poll() is None:
                self.stderr.write(f"The API did not answer {base_url}/healthz in {HEALTH_TIMEOUT:.0f} s: see above.")
        except BaseException:
            if honcho.poll() is None:
                honcho.send_signal(signal.SIGTERM)
                honcho.wait()
            raise
        returncode = honcho.wait()
        # Stopped on request (Ctrl-C): a clean exit. Otherwise a process ended by itself: honcho's status.
        if returncode and not stopping:
            sys.exit(returncode)

    @staticmethod
    def wait_until_healthy(honcho: subprocess.Popen, port: int, stopping) -> bool:
        """Poll /healthz until it answers 200; False if honcho ends, a stop is asked for, or time runs out."""
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while honcho.poll() is None and not stopping() and time.monotonic() < deadline:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            try:
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return True
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(POLL_INTERVAL)
        return False
