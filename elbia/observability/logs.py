"""Structured logs: with ``LOG_FORMAT=json`` every line of the web, worker and beat processes is one JSON object.

Each object has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and ``request_id`` (the request's
``X-Request-ID``, carried into the Celery tasks it queued; ``task_<id>`` for a task no request queued, ``-``
outside both), then whatever the line knows of ``account_id``, ``method``, ``route``, ``status``,
``duration_ms``, ``task`` and ``task_id``, and ``exception`` (the traceback) when there is one. With
``LOG_FORMAT=json`` each request also logs one line of its own (logger ``elbia.request``). The plain format
stays the default (``make run``).
"""

import json
import logging
import os
import sys
from datetime import UTC, datetime

from django.utils.functional import empty

#: Attributes a log record may carry (``extra=``) that become fields of its JSON object.
FIELDS = ("account_id", "method", "route", "status", "duration_ms", "task", "task_id")

request_logger = logging.getLogger("elbia.request")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                document[field] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            document["exception"] = self.formatStack(record.stack_info)
        return json.dumps(document, default=str, ensure_ascii=False)


def say_json(message: str, stream=sys.__stderr__) -> None:
    """Celery's ``safe_say`` (what a worker prints from its signal handlers: "worker: Warm shutdown") as a JSON
    line: written in one ``os.write``, taking no lock, as a signal handler must."""
    document = {
        "time": datetime.now(tz=UTC).isoformat(timespec="milliseconds"),
        "level": "WARNING",
        "logger": "celery.apps.worker",
        "message": message.strip(),
        "request_id": "-",
    }
    os.write(stream.fileno(), (json.dumps(document) + "\n").encode())


def account_id_of(request) -> int | None:
    """The account of an authenticated API request (its token), or of a signed-in user, without a query."""
    auth = getattr(request, "auth", None)
    account = getattr(auth, "account", None)
    if account is not None:
        return account.id
    user = request.__dict__.get("user")  # a session's user, only if something already loaded it (no query here)
    user = getattr(user, "_wrapped", user)
    return None if user is empty else getattr(user, "account_id", None)


def log_request(request, response, *, route: str, method: str, seconds: float) -> None:
    request_logger.info(
        "%s %s %s",
        method,
        route,
        response.status_code,
        extra={
            "account_id": account_id_of(request),
            "method": method,
            "route": route,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
        },
    )
