"""The alert rules and the dashboard of docs/operations/ name only metrics Elbia exposes, and the docs list them all."""

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from elbia.observability import metrics  # noqa: F401 (declares them)

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAME = re.compile(r"\belbia_[a-z_]+\b")
#: What the scrape-time collectors add (read from the database and the broker, not recorded).
STATE = {
    "elbia_resources",
    "elbia_functions",
    "elbia_outbox_unsent",
    "elbia_outbox_oldest_unsent_age_seconds",
    "elbia_celery_queue_messages",
    "elbia_broker_up",
}


def exposed() -> set[str]:
    """Every sample name Elbia's recorded metrics may expose (_total, _bucket, ...), and the state gauges."""
    names = set(STATE)
    for family in REGISTRY.collect():
        if family.name.startswith("elbia_"):
            base = family.name
            names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_sum", f"{base}_count", f"{base}_created"}
    return names


def test_every_declared_metric_is_in_the_docs():
    documented = set(NAME.findall((DOCS / "operations.md").read_text()))
    families = {family.name for family in REGISTRY.collect() if family.name.startswith("elbia_")} | STATE
    assert len(families) > 20  # every module declaring metrics is loaded (elbia.observability.metrics)
    missing = sorted(name for name in families if name not in documented and f"{name}_total" not in documented)
    assert not missing


@pytest.mark.parametrize("path", ["operations/prometheus-alerts.yml", "operations/grafana-dashboard.json"])
def test_alerts_and_dashboard_name_real_metrics(path):
    text = (DOCS / path).read_text()
    if path.endswith(".yml"):
        rules = yaml.safe_load(text)["groups"][0]["rules"]
        assert all({"alert", "expr"} <= set(rule) for rule in rules)
        expressions = " ".join(rule["expr"] for rule in rules)
    else:
        dashboard = json.loads(text)
        expressions = " ".join(target["expr"] for panel in dashboard["panels"] for target in panel["targets"])
    unknown = set(NAME.findall(expressions)) - exposed()
    assert not unknown
