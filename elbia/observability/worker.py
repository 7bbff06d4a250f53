"""The Celery side of the metrics: task runtimes and outcomes, and the worker's own scrape endpoint.

A worker runs its tasks in child processes (prefork): they record in multiprocess mode into the worker's
directory (``elbia.celery`` prepares it before anything is imported), and the worker's main process serves
their sum on ``ELBIA_WORKER_METRICS_PORT`` (on ``ELBIA_WORKER_METRICS_ADDRESS``, loopback by default: an
internal address, with no token). Task metrics are also recorded wherever a task runs in-process (eagerly).

elbia.celery imports this module, and the ``elbia`` package imports elbia.celery: the Prometheus client is
imported here only once a handler runs, so that importing ``elbia`` (gunicorn.conf.py does) leaves the choice
of its multiprocess mode to ``elbia.observability.multiprocess.prepare``.
"""

import logging
import logging.config
import os
import time

import celery.apps.worker
from celery import signals
from django.conf import settings

from elbia.observability import logs, multiprocess

logger = logging.getLogger(__name__)

_STARTED = "elbia_metrics_started"


@signals.celeryd_init.connect
def _json_logs_from_the_start(instance=None, **kwargs) -> None:
    """With LOG_FORMAT=json, a worker prints JSON from its first line: no start banner, and the warnings of its
    start-up checks (superuser privileges, ...) logged, not printed."""
    if settings.LOG_FORMAT == "json":
        instance.quiet = True
        logging.config.dictConfig(settings.LOGGING)
        logging.captureWarnings(True)
        celery.apps.worker.safe_say = logs.say_json  # what its signal handlers print


@signals.task_prerun.connect
def _task_started(task=None, **kwargs) -> None:
    setattr(task.request, _STARTED, time.perf_counter())


@signals.task_postrun.connect
def _task_finished(task=None, state=None, **kwargs) -> None:
    from elbia.observability import metrics

    started = getattr(task.request, _STARTED, None)
    outcome = {"SUCCESS": "success", "FAILURE": "failure", "RETRY": "retry"}.get(state or "", "other")
    metrics.celery_tasks.labels(task.name, outcome).inc()
    if started is not None:
        metrics.celery_task_duration.labels(task.name).observe(time.perf_counter() - started)


@signals.worker_ready.connect
def _serve_metrics(sender=None, **kwargs) -> None:
    port = settings.ELBIA_WORKER_METRICS_PORT
    if not port:
        return
    from prometheus_client import start_http_server

    from elbia.observability import metrics

    address = settings.ELBIA_WORKER_METRICS_ADDRESS
    server, _ = start_http_server(port, addr=address, registry=metrics.scrape_registry(with_state=False))
    logger.info("Worker metrics at http://%s:%s/metrics", address, server.server_port)


@signals.worker_process_shutdown.connect
def _child_exited(pid=None, **kwargs) -> None:
    from elbia.observability import metrics

    metrics.mark_process_dead(pid or os.getpid())


@signals.worker_shutdown.connect
def _remove_temporary_directory(**kwargs) -> None:
    multiprocess.remove_temporary()
