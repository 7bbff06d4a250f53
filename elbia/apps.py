from django.apps import AppConfig


class ElbiaConfig(AppConfig):
    """The ground floor: checks at start every setting that names a class or a backend."""

    name = "elbia"
    verbose_name = "Elbia"

    def ready(self) -> None:
        from elbia.observability import metrics, state, tracing
        from elbia.providers import get_provider

        # manage.py, gunicorn and the Celery processes all pass here: a bad ELBIA_PROVIDER stops them at once.
        get_provider()
        metrics.register_scrape_collector(state.OutboxBacklog())
        metrics.register_scrape_collector(state.QueueDepths())
        tracing.configure()  # before the first request builds the middleware: Django's instrumentation joins it
