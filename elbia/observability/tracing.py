"""Traces (OpenTelemetry): off unless configured with the standard ``OTEL_*`` variables.

Tracing starts when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set and
``OTEL_SDK_DISABLED`` is not ``true``: spans go by OTLP over HTTP to that collector, in batches, from every
process (web, worker, beat, commands), named by ``OTEL_SERVICE_NAME`` (default ``elbia``). The other standard
variables apply (``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS``, ...). Otherwise nothing is
instrumented, nothing is sent, and the spans below cost a no-op call.

Instrumented: Django requests, psycopg queries, Redis commands, Celery (publishing a task and running it, the
trace context travelling in the message headers), boto3 calls; and Elbia's own spans: the outbox sending a
message (``outbox.send``, a child of the request that queued it, even when the relay sends it later: the
outbox row keeps the trace context) and a lifecycle step's provider work (``provider.<step>``).
"""

import importlib
import logging
import os

from opentelemetry import propagate, trace

logger = logging.getLogger(__name__)

tracer = trace.get_tracer("elbia")
_configured = False
_provider = None
_processors: list = []
_INSTRUMENTORS = (
    ("opentelemetry.instrumentation.django", "DjangoInstrumentor"),
    ("opentelemetry.instrumentation.psycopg", "PsycopgInstrumentor"),
    ("opentelemetry.instrumentation.redis", "RedisInstrumentor"),
    ("opentelemetry.instrumentation.celery", "CeleryInstrumentor"),
    ("opentelemetry.instrumentation.botocore", "BotocoreInstrumentor"),
)


def enabled() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def is_on() -> bool:
    return _configured


def configure() -> None:
    """Start tracing if configured (see the module docstring); once per process. Called as Django starts."""
    if _configured or not enabled():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    install(BatchSpanProcessor(OTLPSpanExporter()))


def _instrumentors():
    for module, name in _INSTRUMENTORS:
        yield getattr(importlib.import_module(module), name)()


def install(processor) -> None:
    """Set the tracer provider with ``processor`` and instrument the libraries (tests pass an in-memory one)."""
    global _configured, _provider
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "elbia")}).merge(
        OTELResourceDetector().detect()
    )
    if _provider is None:
        _provider = TracerProvider(resource=resource)
        trace.set_tracer_provider(_provider)  # once per process: OpenTelemetry refuses to replace it
    _provider.add_span_processor(processor)
    _processors.append(processor)
    for instrumentor in _instrumentors():
        options = {"skip_dep_check": True} if type(instrumentor).__name__ == "PsycopgInstrumentor" else {}
        instrumentor.instrument(tracer_provider=_provider, **options)
    _configured = True
    logger.info("Tracing on: spans exported by %s", type(processor).__name__)


def uninstall() -> None:
    """Undo ``install`` (the tests): the libraries uninstrumented, the span processors stopped."""
    global _configured
    for instrumentor in _instrumentors():
        instrumentor.uninstrument()
    while _processors:
        _processors.pop().shutdown()
    _configured = False


def current_parent() -> str:
    """The current span as a W3C ``traceparent`` (kept with queued work), or "" when not tracing."""
    if not _configured:
        return ""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def span_under(parent: str, name: str, **attributes):
    """A span named ``name`` continuing the trace of ``parent`` (a ``traceparent``); a no-op when not tracing."""
    parent_context = propagate.extract({"traceparent": parent}) if parent else None
    return tracer.start_as_current_span(name, context=parent_context, attributes=attributes)
