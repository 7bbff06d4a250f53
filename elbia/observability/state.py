"""Metrics read from the current state at scrape time: rows by status, the outbox backlog, queue depths.

Each collector costs one cheap query (or one broker round trip) per scrape and records nothing between
scrapes, so every web process reports the same figures: the state of the database and the broker.
"""

import itertools
import logging

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from kombu.exceptions import ChannelError
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)


class StatusCounts:
    """``<name>{status[, ...]}``: how many rows of ``model`` have each status (and each value of the other
    ``labels``), deleted rows left out. One grouped query; a combination with no row is reported as 0, so a
    series never vanishes. ``labels`` maps each field to its known values (its choices).
    """

    def __init__(self, name: str, documentation: str, model, *, labels: dict[str, list[str]], transient=()):
        self.name, self.documentation, self.model = name, documentation, model
        #: The statuses work passes through (the staff page lists rows left in one too long).
        self.transient = [str(status) for status in transient]
        self.labels = {
            field: [str(value) for value in values if value != "deleted"] for field, values in labels.items()
        }

    def describe(self):
        return [GaugeMetricFamily(self.name, self.documentation, labels=list(self.labels))]

    def counts(self) -> dict[tuple[str, ...], int]:
        rows = (
            self.model._default_manager.exclude(status="deleted")
            .order_by()
            .values_list(*self.labels)
            .annotate(count=Count("id"))
        )
        return {tuple(str(value) for value in row[:-1]): row[-1] for row in rows}

    def by_status(self) -> dict[str, int]:
        """Rows by status alone (the other labels added up), every known status listed."""
        totals = dict.fromkeys(self.labels["status"], 0)
        for labels, count in self.counts().items():
            totals[labels[0]] = totals.get(labels[0], 0) + count
        return totals

    def collect(self):
        counts = self.counts()
        family = GaugeMetricFamily(self.name, self.documentation, labels=list(self.labels))
        for combination in itertools.product(*self.labels.values()):
            family.add_metric(list(combination), counts.get(combination, 0))
        yield family


class OutboxBacklog:
    """The outbox's unsent messages and the age of the oldest (one query on its partial index)."""

    def describe(self):
        return list(self._families())

    @staticmethod
    def _families():
        return (
            GaugeMetricFamily("elbia_outbox_unsent", "Outbox messages not yet handed to the broker."),
            GaugeMetricFamily(
                "elbia_outbox_oldest_unsent_age_seconds",
                "Age of the oldest outbox message not yet handed to the broker (0 when none).",
            ),
        )

    @staticmethod
    def backlog() -> dict:
        """``count`` of unsent messages and when the ``oldest`` was written (None when none): one query."""
        from elbia.models import OutboxMessage

        return OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(count=Count("id"), oldest=Min("created_at"))

    def collect(self):
        backlog = self.backlog()
        unsent, age = self._families()
        unsent.add_metric([], backlog["count"])
        oldest = backlog["oldest"]
        age.add_metric([], (timezone.now() - oldest).total_seconds() if oldest else 0.0)
        yield unsent
        yield age


class QueueDepths:
    """``elbia_celery_queue_messages{queue}``: messages waiting in each queue, asked of the broker at scrape time
    (a passive declare per queue, within the broker's timeouts); ``elbia_broker_up`` says whether it answered."""

    def describe(self):
        return list(self._families())

    @staticmethod
    def _families():
        return (
            GaugeMetricFamily(
                "elbia_celery_queue_messages",
                "Messages waiting in each Celery queue, read from the broker.",
                labels=["queue"],
            ),
            GaugeMetricFamily("elbia_broker_up", "1 when the broker answered this scrape's queue lookups, else 0."),
        )

    @staticmethod
    def queues() -> list[str]:
        from elbia.celery import app

        return sorted({app.conf.task_default_queue, *(queue.name for queue in app.conf.task_queues or ())})

    def depths(self) -> dict[str, int] | None:
        from elbia.celery import app

        try:
            with app.connection_for_read() as conn:
                conn.ensure_connection(max_retries=0, timeout=settings.REDIS_CONNECT_TIMEOUT)
                return {name: self._depth(conn, name) for name in self.queues()}
        except Exception as exc:  # any broker failure: the scrape still answers, saying the broker is down
            logger.warning("Metrics: the broker did not answer the queue lookups: %s", exc)
            return None

    @staticmethod
    def _depth(conn, name: str) -> int:
        try:
            return conn.default_channel.queue_declare(queue=name, passive=True).message_count
        except (ChannelError, *conn.channel_errors):  # no such queue (Redis: an empty one): nothing waits in it
            return 0

    def collect(self):
        depths, up = self._families()
        found = self.depths()
        for name, count in (found or {}).items():
            depths.add_metric([name], count)
        up.add_metric([], 1 if found is not None else 0)
        yield depths
        yield up
