"""The runner: the one process that runs functions, and the client web and worker processes call it through.

Functions never run inside a web or worker process: ``manage.py run_runtime`` serves
``POST /invoke`` on 127.0.0.1:``ELBIA_RUNNER_PORT`` (HTTP/1.1, a thread per invocation) and holds the
warm environments (``environments.Pool``). Callers authenticate with a bearer secret derived from
``SECRET_KEY`` (``runner_secret``). The request body is one JSON line (the function's spec, its
environment values encrypted as at rest: they are decrypted only here) followed by the event's bytes;
the answer is the ``Outcome`` as JSON.
"""

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import re
import socket
import threading
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings

from elbia.encryption import decrypt_values, encrypt_values
from elbia.observability import metrics
from functions.code import CodeUnavailable
from functions.runtime.environments import (
    INIT_TIMEOUT_S,
    MAX_EVENT_BYTES,
    FunctionSpec,
    LocalRuntimeError,
    Outcome,
    Pool,
    RuntimeBusy,
    RuntimeUnavailable,
    ensure_local,
)

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: How much longer than the function's timeout a caller waits: a cold start's init, and the exchange itself.
CALL_MARGIN_S = INIT_TIMEOUT_S + 5


def runner_secret() -> str:
    """The bearer secret callers present to the runner (derived from ``SECRET_KEY``, never configured apart)."""
    return hmac.new(settings.SECRET_KEY.encode(), b"elbia-runtime-runner", hashlib.sha256).hexdigest()


def _spec_to_wire(spec: FunctionSpec) -> dict:
    wire = asdict(spec)
    wire["environment"] = encrypt_values(dict(spec.environment))
    return wire


def _spec_from_wire(wire: dict) -> FunctionSpec:
    wire = dict(wire)
    wire["environment"] = tuple(sorted(decrypt_values(wire["environment"]).items()))
    return FunctionSpec(**wire)


# --- the client ------------------------------------------------------------------------------------------


def runtime_invoke(function, event_bytes: bytes, request_id: str, *, port: int | None = None) -> Outcome:
    """Run ``function`` on ``event_bytes`` (JSON) in the runner and return the ``Outcome``.

    Raises ``RuntimeNotLocal`` for a runtime the local runtime does not run, ``RuntimeUnavailable`` when
    the runner cannot be reached (or lacks the code or the interpreter), ``RuntimeBusy`` when every
    environment is busy. Waits the function's timeout plus ``CALL_MARGIN_S`` at most. Every invocation is
    counted in the invocation metrics (docs/operations.md).
    """
    ensure_local(function.runtime)
    try:
        outcome = _invoke(function, event_bytes, request_id, port=port)
    except LocalRuntimeError as error:
        metrics.record_invocation_not_run(runtime=function.runtime, refused=isinstance(error, RuntimeBusy))
        raise
    metrics.record_invocation(runtime=function.runtime, outcome=outcome)
    return outcome


def _invoke(function, event_bytes: bytes, request_id: str, *, port: int | None) -> Outcome:
    if not REQUEST_ID.fullmatch(request_id):
        raise ValueError("A request id is 1-128 letters, digits or . _ : -")
    port = settings.ELBIA_RUNNER_PORT if port is None else port
    spec = FunctionSpec.of(function)
    body = json.dumps({"spec": _spec_to_wire(spec), "request_id": request_id}).encode() + b"\n" + event_bytes
    connection = http.client.HTTPConnection(HOST, port, timeout=function.timeout_s + CALL_MARGIN_S)
    try:
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.request(
            "POST",
            "/invoke",
            body=body,
            headers={"Authorization": f"Bearer {runner_secret()}", "Content-Type": "application/octet-stream"},
        )
        response = connection.getresponse()
        payload = response.read()
    except (ConnectionError, TimeoutError, OSError, http.client.HTTPException) as error:
        raise RuntimeUnavailable(
            f"The function runner at {HOST}:{port} is not reachable ({error}); "
            "start it with `manage.py run_runtime` (`make run` does)."
        ) from None
    finally:
        connection.close()
    if response.status == 200:
        return Outcome.from_dict(json.loads(payload))
    message = json.loads(payload).get("message", "") if payload.startswith(b"{") else payload.decode(errors="replace")
    error_class = {503: RuntimeBusy, 502: RuntimeUnavailable}.get(response.status, LocalRuntimeError)
    raise error_class(message or f"The function runner answered {response.status}.")


# --- the server ------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "RunnerServer"
    # Headers and body leave in one segment (flushed after each request), without Nagle's delay.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        logger.debug("runner: " + format, *args)

    def _answer(self, status: int, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path != "/health":
            return self._answer(404, {"message": "Not found."})
        return self._answer(200, {"idle_environments": self.server.pool.idle_count()})

    def do_POST(self):
        if self.path != "/invoke":
            return self._answer(404, {"message": "Not found."})
        presented = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(presented.encode(), runner_secret().encode()):
            return self._answer(401, {"message": "A valid runner secret is required."})
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_EVENT_BYTES + 64 * 1024:
            return self._answer(413, {"message": f"The event is larger than {MAX_EVENT_BYTES} bytes."})
        body = self.rfile.read(length)
        line, _, event = body.partition(b"\n")
        try:
            request = json.loads(line)
            spec = _spec_from_wire(request["spec"])
            request_id = request["request_id"]
            if not REQUEST_ID.fullmatch(request_id):
                raise ValueError("bad request id")
        except (ValueError, KeyError, TypeError) as error:
            return self._answer(400, {"message": f"Malformed invocation: {error}"})
        try:
            outcome = self.server.pool.invoke(spec, event, request_id)
        except RuntimeBusy as error:
            return self._answer(503, {"message": str(error)})
        except (RuntimeUnavailable, CodeUnavailable) as error:
            return self._answer(502, {"message": str(error)})
        except LocalRuntimeError as error:
            return self._answer(400, {"message": str(error)})
        return self._answer(200, outcome.to_dict())


class RunnerServer(ThreadingHTTPServer):
    """The runner's HTTP server; ``pool`` holds its environments; a thread reaps the idle ones."""

    daemon_threads = True

    def __init__(self, port: int, pool: Pool | None = None):
        super().__init__((HOST, port), _Handler)
        self.pool = pool or Pool()
        self._stopping = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="runtime-reaper", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        interval = max(0.05, min(5.0, self.pool.idle_seconds / 2))
        while not self._stopping.wait(interval):
            with contextlib.suppress(Exception):
                reaped = self.pool.reap()
                if reaped:
                    logger.info("Reaped %d idle execution environment(s)", reaped)

    def server_close(self) -> None:
        self._stopping.set()
        super().server_close()
        self.pool.close()
