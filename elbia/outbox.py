"""The one way to queue background work after a write: ``enqueue(task_name, *args)``.

Services call it inside their transaction; the task is named (``"resources.tasks.provision_resource"``)
rather than imported, so a service never imports its app's tasks module (no import circles) and the
message carries ids only. The message is sent once the transaction commits; a broker outage at that
moment is logged and never turns a committed write into an error (the reaper finds the work again).
"""

import logging

from django.db import transaction

logger = logging.getLogger(__name__)


class Message:
    """One task to send once the transaction commits (callable, as ``transaction.on_commit`` wants)."""

    def __init__(self, task_name: str, args: tuple):
        self.task_name = task_name
        self.args = args

    def __call__(self) -> None:
        from celery.exceptions import NotRegistered

        from elbia.celery import app

        try:
            try:
                task = app.tasks[self.task_name]
            except NotRegistered:  # a process that has not loaded the apps' task modules yet (a web worker)
                app.loader.import_default_modules()
                task = app.tasks[self.task_name]
            task.apply_async(args=self.args)
        except Exception:
            logger.warning("Could not queue %s%s; the reaper will find the work again", self.task_name, self.args)


def enqueue(task_name: str, *args) -> None:
    """Send ``task_name(*args)`` to the workers once the current transaction commits."""
    transaction.on_commit(Message(task_name, args))
