"""gunicorn's sync worker, answering its own errors in the contract's JSON instead of HTML.

gunicorn answers some requests before Django sees them: a request line or headers over its limits
(414, 431), a malformed request (400), and a request still running when the worker timeout strikes
(the arbiter aborts the worker: gunicorn writes a 500 on the way out unless the answer had started).
``JsonErrorWorker`` writes those answers as ``{"error": {...}}`` with ``X-Request-ID``; a timed-out
request becomes ``503 unavailable`` with ``Retry-After``. Settings: gunicorn.conf.py.
"""

import json
import uuid

from gunicorn import util
from gunicorn.workers.sync import SyncWorker

RETRY_AFTER_SECONDS = 5
#: (code, message) of each status gunicorn itself may answer with.
ERRORS = {
    400: ("invalid_request", "The HTTP request is malformed."),
    403: ("permission_denied", "This request is not allowed."),
    414: ("uri_too_long", "The request line is too long: at most 8190 bytes, query parameters included."),
    417: ("invalid_request", "The Expect header cannot be met."),
    431: ("headers_too_large", "The request headers are too large."),
    501: ("not_implemented", "This transfer coding is not supported."),
    503: ("unavailable", "The request took too long and was stopped; retry shortly."),
}
INTERNAL_ERROR = ("internal_error", "Internal server error")


def json_error_answer(status: int, *, reason: str) -> bytes:
    """A complete HTTP/1.1 answer carrying the contract's error document; the connection closes after it."""
    code, message = ERRORS.get(status, INTERNAL_ERROR)
    request_id = f"req_{uuid.uuid4().hex}"
    body = json.dumps(
        {"error": {"status": status, "code": code, "message": message, "request_id": request_id}},
        separators=(",", ":"),
    ).encode()
    head = [
        f"HTTP/1.1 {status} {reason}",
        "Connection: close",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        f"X-Request-ID: {request_id}",
    ]
    if status == 503:
        head.append(f"Retry-After: {RETRY_AFTER_SECONDS}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class JsonErrorWorker(SyncWorker):
    """gunicorn's sync worker whose own error answers are JSON (see the module docstring)."""

    def handle_error(self, req, client, addr, exc):
        timed_out = isinstance(exc, SystemExit)  # the arbiter's abort on a worker timeout

        def write_json(sock, status_int, reason, mesg):
            status, why = (503, "Service Unavailable") if timed_out else (status_int, reason)
            util.write_nonblock(sock, json_error_answer(status, reason=why))

        # gunicorn's handle_error picks the status and logs; only how it writes the answer changes. The
        # worker serves one request at a time, so swapping the writer for this call affects nothing else.
        write_error, util.write_error = util.write_error, write_json
        try:
            super().handle_error(req, client, addr, exc)
        finally:
            util.write_error = write_error
