"""Every Prometheus metric Elbia records, declared once (docs/operations.md says what each one means).

Processes with several workers (gunicorn, a prefork Celery worker) record in multiprocess mode: each process
writes its values to files under ``PROMETHEUS_MULTIPROC_DIR``, and a scrape adds them up (``scrape_registry``).
That directory is chosen and emptied as the server starts (``elbia.observability.multiprocess``); without it
(``manage.py runserver``, the tests) values stay in the process.

Labels are bounded sets: a route *template*, a method, a status, a queue, a task name, a status or reason
class. Never an account id, a resource id or a raw path.
"""

import os

from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from elbia.observability.multiprocess import MULTIPROC_ENV

#: The methods recorded by name; any other is recorded as "other".
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request no URL pattern matched (a 404 of the resolver).
UNMATCHED_ROUTE = "unmatched"

# Seconds: from a fast cached read (a few ms) up to the 30 s worker timeout.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

http_requests = Counter(
    "elbia_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
http_request_duration = Histogram(
    "elbia_http_request_duration_seconds",
    "Time to answer an HTTP request (in the application, from the first middleware to the response).",
    ["route", "method"],
    buckets=REQUEST_BUCKETS,
)
http_rate_limited = Counter(
    "elbia_http_rate_limited",
    "Requests refused with 429 rate_limited, by route template.",
    ["route"],
)
http_idempotent_replays = Counter(
    "elbia_http_idempotent_replays",
    "Creating requests answered by replaying the first response of their Idempotency-Key, by route template.",
    ["route"],
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def mark_process_dead(pid: int) -> None:
    """A worker process of this server exited: its live gauges stop counting (its counters keep adding up)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


#: Collectors that read the current state at scrape time (counts by status, queue depths, the outbox backlog),
#: registered by the apps that own that state (``register_scrape_collector`` in their ``AppConfig.ready``).
SCRAPE_COLLECTORS: list = []


def register_scrape_collector(collector) -> None:
    if collector not in SCRAPE_COLLECTORS:
        SCRAPE_COLLECTORS.append(collector)


class _ProcessValues:
    """This process's own values, as one collector of a scrape's registry (when not in multiprocess mode)."""

    def collect(self):
        return PROCESS_REGISTRY.collect()


def scrape_registry(*, with_state: bool = True) -> CollectorRegistry:
    """What one scrape reads: every process's recorded values added up (multiprocess mode) or this process's,
    and, ``with_state``, the scrape-time collectors."""
    scraped = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        multiprocess.MultiProcessCollector(scraped, path=path)
    else:
        scraped.register(_ProcessValues())
    if with_state:
        for collector in SCRAPE_COLLECTORS:
            scraped.register(collector)
    return scraped


# --- The lifecycle (elbia.lifecycle): resources, functions ------------------------------------------------------

# Seconds: the simulated provider takes a few seconds a step; a real instance boots in about a minute.
LIFECYCLE_BUCKETS = (1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

lifecycle_duration = Histogram(
    "elbia_lifecycle_duration_seconds",
    "From the request to the step's done status: pending to active (provisioning), deleting to deleted "
    "(deletion), created to active (deployment); by kind of row and step.",
    ["kind", "step"],
    buckets=LIFECYCLE_BUCKETS,
)
lifecycle_failures = Counter(
    "elbia_lifecycle_failures",
    "Rows a lifecycle step failed, by kind, step and reason class (provider, not_ready, gave_up, timeout, "
    "internal, stuck, precondition).",
    ["kind", "step", "reason"],
)
lifecycle_requeues = Counter(
    "elbia_lifecycle_requeues",
    "Steps the reaper handed to a new message (a dead worker's claim, or a lost message), by kind and step.",
    ["kind", "step"],
)


# --- Celery ------------------------------------------------------------------------------------------------------

TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

celery_tasks = Counter(
    "elbia_celery_tasks",
    "Celery task runs finished, by task name and outcome (success, failure, retry).",
    ["task", "outcome"],
)
celery_task_duration = Histogram(
    "elbia_celery_task_duration_seconds",
    "Time a Celery task run took, by task name.",
    ["task"],
    buckets=TASK_BUCKETS,
)


# --- Billing -----------------------------------------------------------------------------------------------------

usage_events = Counter(
    "elbia_usage_events",
    "Usage events received on POST /v1/usage/events, by result: accepted (stored) or duplicate (already recorded).",
    ["result"],
)
invoice_runs = Histogram(
    "elbia_invoice_run_duration_seconds",
    "Time a run of invoice generation took (one chunk of accounts of the daily job or of a month's run).",
    buckets=(0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
)
invoice_run_last_duration = Gauge(
    "elbia_invoice_run_last_duration_seconds",
    "Time the most recent run of invoice generation took.",
    multiprocess_mode="mostrecent",
)
invoice_run_last_finished = Gauge(
    "elbia_invoice_run_last_finished_timestamp_seconds",
    "When the most recent run of invoice generation finished (Unix time).",
    multiprocess_mode="mostrecent",
)
invoices = Counter(
    "elbia_invoices",
    "Invoices by result of their run: created, or failed (usage the price book could not price, left for a later run).",
    ["result"],
)


def record_invoice_run(*, seconds: float, created: int, failed: int) -> None:
    invoice_runs.observe(seconds)
    invoice_run_last_duration.set(seconds)
    invoice_run_last_finished.set_to_current_time()
    invoices.labels("created").inc(created)
    invoices.labels("failed").inc(failed)


# --- Invocations (functions.runtime.runner.runtime_invoke: every invocation passes there) -------------------------

INVOCATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)

invocations = Counter(
    "elbia_invocations",
    "Function invocations, by runtime and outcome: ok, error (the function raised or timed out), refused "
    "(every execution environment busy: a concurrency refusal), unavailable (the runner could not run it).",
    ["runtime", "outcome"],
)
invocation_duration = Histogram(
    "elbia_invocation_duration_seconds",
    "Time a function ran, as the runner measured it (cold start not included), by runtime.",
    ["runtime"],
    buckets=INVOCATION_BUCKETS,
)
invocation_cold_starts = Counter(
    "elbia_invocation_cold_starts",
    "Invocations that started a new execution environment, by runtime.",
    ["runtime"],
)
invocation_init_duration = Histogram(
    "elbia_invocation_init_duration_seconds",
    "Time a cold start took (process start and handler load), by runtime.",
    ["runtime"],
    buckets=INVOCATION_BUCKETS,
)


def record_invocation(*, runtime: str, outcome) -> None:
    """One invocation that ran: its ``functions.runtime.environments.Outcome`` (ok, duration_ms, cold, ...)."""
    invocations.labels(runtime, "ok" if outcome.ok else "error").inc()
    invocation_duration.labels(runtime).observe(outcome.duration_ms / 1000)
    if outcome.cold:
        invocation_cold_starts.labels(runtime).inc()
        if outcome.init_duration_ms is not None:
            invocation_init_duration.labels(runtime).observe(outcome.init_duration_ms / 1000)


def record_invocation_not_run(*, runtime: str, refused: bool) -> None:
    """One invocation that did not run: ``refused`` (every environment busy), else the runner was unavailable."""
    invocations.labels(runtime, "refused" if refused else "unavailable").inc()
