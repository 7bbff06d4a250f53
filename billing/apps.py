from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"

    def ready(self) -> None:
        from billing import signals  # noqa: F401  (compute metering follows resource lifecycle writes)
        from billing.system import last_invoice_runs
        from elbia.observability.system import register_section

        register_section(last_invoice_runs)
