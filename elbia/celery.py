"""The Celery app: configured from Django settings (``CELERY_*``), tasks found in every app.

Every worker also runs the outbox relay (the ``elbia.outbox:OutboxRelay`` bootstep), and every task's log
lines carry the id of the request that queued it (the ``elbia_request_id`` message header). A worker records
its metrics across its processes (``elbia.observability.worker``; docs/operations.md).
"""

import os
import sys

from celery import Celery, signals

from elbia.observability import multiprocess

if multiprocess.is_worker_command(sys.argv):
    # Before the Prometheus client is first imported (Django's set-up imports it): the pool's processes
    # record into this worker's directory, and its main process serves their sum.
    multiprocess.prepare("worker")

from elbia.api.middleware import current_request_id
from elbia.observability import worker as _worker_metrics  # noqa: F401 (connects the task signals)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "elbia.settings")

#: The message header that carries the queuing request's id to the worker (elbia.outbox sets it).
REQUEST_ID_HEADER = "elbia_request_id"

app = Celery("elbia")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Named, not imported: the outbox queues through this app, so this module must not import it back.
app.steps["worker"].add("elbia.outbox:OutboxRelay")


@signals.task_prerun.connect
def _log_with_request_id(task=None, task_id=None, **kwargs) -> None:
    task.request.elbia_request_id_token = current_request_id.set(
        task.request.get(REQUEST_ID_HEADER) or f"task_{task_id}"
    )


@signals.task_postrun.connect
def _forget_request_id(task=None, **kwargs) -> None:
    token = getattr(task.request, "elbia_request_id_token", None)
    if token is not None:
        current_request_id.reset(token)
