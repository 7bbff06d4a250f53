"""gunicorn's settings for Elbia, read by ``gunicorn elbia.wsgi`` started from this directory (the Procfile,
the tests and the benchmarks pass only the address and the number of workers). See docs/faults.md."""

import os

# Errors gunicorn answers itself (over-long request line, worker timeout, ...) are the contract's JSON.
worker_class = "elbia.gunicorn.JsonErrorWorker"
# gunicorn's maximum: a `filter` at its documented limit (2048 bytes of UTF-8, up to 6144 characters once
# URL-encoded) fits with every other list parameter.
limit_request_line = 8190
# A request still running after this many seconds is stopped (JSON 503). Elbia's own timeouts fire long
# before: a database or Redis that does not answer costs a request 2 to 3 seconds.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "10"))

# Metrics (docs/operations.md): every worker records into this server's own directory, emptied now, before the
# application (and the Prometheus client) is loaded; /metrics adds the workers' values up.
from elbia.observability import multiprocess  # noqa: E402

_metrics_dir, _metrics_dir_is_temporary = multiprocess.prepare("web")


def child_exit(server, worker):
    from elbia.observability import metrics

    metrics.mark_process_dead(worker.pid)


def on_exit(server):
    if _metrics_dir_is_temporary:
        multiprocess.remove(_metrics_dir)


# LOG_FORMAT=json: gunicorn's own lines are JSON too; its access lines give way to the application's one JSON
# line per request (logger elbia.request: route template, status, duration, request and account ids).
if os.environ.get("LOG_FORMAT") == "json":
    logconfig_dict = {
        "formatters": {"json": {"()": "elbia.observability.logs.JsonFormatter"}},
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
            "error_console": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": ["console"], "propagate": False},
        },
    }
