"""The ground floor's own table: the transactional outbox (elbia.outbox)."""

from django.db import models
from django.utils import timezone


class OutboxMessage(models.Model):
    """A task to hand to Celery, written in the same transaction as the change that calls for it.

    ``sent_at`` is empty until the broker has the message (or until it was given up: an unknown task,
    with ``last_error`` saying so); sent rows are deleted after ``ELBIA_OUTBOX_RETENTION``.
    """

    task_name = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)
    request_id = models.CharField(max_length=128, blank=True, help_text="The request that queued it, for tracing.")
    trace_parent = models.CharField(
        max_length=64, blank=True, default="", help_text="The span that queued it (W3C traceparent), when tracing."
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Tries to hand it to the broker so far.")
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [
            # The relay's query (unsent, oldest first) and the purge's (sent before a time): both stay small.
            models.Index(fields=["id"], condition=models.Q(sent_at__isnull=True), name="outbox_unsent"),
            models.Index(fields=["sent_at"], condition=models.Q(sent_at__isnull=False), name="outbox_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}{tuple(self.args)}"
