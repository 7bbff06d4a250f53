"""Traces: off by default; when on, one POST /v1/resources is one trace, from the request through the outbox to
the provisioning task and its provider call, with the database and Redis spans inside."""

import time

import pytest
from django.db import connection
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from elbia.observability import tracing
from elbia.observability.tracing import enabled
from resources.models import Resource

COMPUTE = {"region": "us-east-1", "instance_type": "t2.micro", "vpc": "default"}


@pytest.mark.parametrize(
    ("environment", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_off_unless_an_exporter_endpoint_is_set(monkeypatch, environment, on):
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert enabled() is on


def test_by_default_nothing_is_instrumented():
    assert not tracing.is_on()
    assert tracing.current_parent() == ""


@pytest.fixture
def spans():
    """Tracing on for this test, into memory; instrumentation removed afterwards."""
    exporter = InMemorySpanExporter()
    tracing.install(SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        tracing.uninstall()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_one_post_is_one_trace_through_the_outbox_to_the_provisioning_task(spans, celery_worker, api):
    response = api.post("/v1/resources", COMPUTE, format="json")
    assert response.status_code == 201, response.content
    public_id = response.json()["id"]
    deadline = time.monotonic() + 30
    while Resource.objects.get(public_id=public_id).status != "active":
        assert time.monotonic() < deadline, "not provisioned in time"
        time.sleep(0.05)
        connection.close()
    time.sleep(0.3)  # the task's last spans end as it returns

    finished = spans.get_finished_spans()
    (request,) = [span for span in finished if span.kind == SpanKind.SERVER and span.name == "POST v1/resources$"]
    trace = [span for span in finished if span.context.trace_id == request.context.trace_id]
    names = {span.name for span in trace}
    assert "outbox.send" in names
    assert "apply_async/resources.tasks.provision_resource" in names
    assert "run/resources.tasks.provision_resource" in names
    assert "provider.provisioning" in names
    assert any(span.attributes.get("db.system") == "postgresql" for span in trace)
    assert any(span.attributes.get("db.system") == "redis" for span in trace)
    # Parent links, not only a shared trace id: the task run descends from the request.
    by_id = {span.context.span_id: span for span in trace}
    run = next(span for span in trace if span.name == "run/resources.tasks.provision_resource")
    ancestors = []
    while run.parent is not None and run.parent.span_id in by_id:
        run = by_id[run.parent.span_id]
        ancestors.append(run.name)
    assert "outbox.send" in ancestors and ancestors[-1] == request.name
