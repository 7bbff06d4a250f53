"""Request IDs: accepted from the client when sane, generated otherwise, echoed and logged."""

import logging
import re
import uuid
from contextvars import ContextVar

from elbia.api import headers

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
current_request_id: ContextVar[str] = ContextVar("current_request_id", default="-")


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


class RequestIDMiddleware:
    """Give every request an ID (``request.request_id``) and every response ``X-Request-ID``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        offered = request.headers.get(headers.REQUEST_ID, "")
        request.request_id = offered if _SANE_REQUEST_ID.match(offered) else new_request_id()
        token = current_request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response[headers.REQUEST_ID] = request.request_id
        return response


class RequestIDLogFilter(logging.Filter):
    """Adds ``request_id`` to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True
