"""The Celery app: configured from Django settings (``CELERY_*``), tasks found in every app.

Every worker also runs the outbox relay (the ``elbia.outbox:OutboxRelay`` bootstep), and every task's log
lines carry the id of the request that queued it (the ``elbia_request_id`` message header).
"""

import os

from celery import Celery, signals

from elbia.api.middleware import current_request_id

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
