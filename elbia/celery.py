"""The Celery app: configured from Django settings (``CELERY_*``), tasks found in every app.

Every worker also runs the outbox relay (``OutboxRelay``, see elbia.outbox), and every task's log lines
carry the id of the request that queued it.
"""

import os
import threading

from celery import Celery, bootsteps, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "elbia.settings")

app = Celery("elbia")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class RelayThread:
    """The outbox relay's thread: started with the worker, stopped (and joined) with it."""

    def __init__(self):
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        from elbia.outbox import relay_forever

        self.thread = threading.Thread(target=relay_forever, args=(self.stopping,), name="outbox-relay", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=10)


class OutboxRelay(bootsteps.StartStopStep):
    """Every worker runs the outbox relay in its main process: it sends what the web processes could not."""

    requires = {"celery.worker.components:Pool"}

    def create(self, worker) -> RelayThread:
        return RelayThread()


app.steps["worker"].add(OutboxRelay)


@signals.task_prerun.connect
def _log_with_request_id(task=None, task_id=None, **kwargs) -> None:
    from elbia.api.middleware import current_request_id
    from elbia.outbox import REQUEST_ID_HEADER

    task.request.elbia_request_id_token = current_request_id.set(
        task.request.get(REQUEST_ID_HEADER) or f"task_{task_id}"
    )


@signals.task_postrun.connect
def _forget_request_id(task=None, **kwargs) -> None:
    from elbia.api.middleware import current_request_id

    token = getattr(task.request, "elbia_request_id_token", None)
    if token is not None:
        current_request_id.reset(token)
