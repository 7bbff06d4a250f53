"""Operating Elbia: Prometheus metrics (``metrics``, ``http``), structured logs and traces. See docs/operations.md."""
