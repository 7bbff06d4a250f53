from django.apps import AppConfig


class FunctionsConfig(AppConfig):
    name = "functions"

    def ready(self) -> None:
        from elbia.observability import metrics, state
        from functions.models import TRANSIENT_STATUSES, Function, FunctionStatus

        metrics.register_scrape_collector(
            state.StatusCounts(
                "elbia_functions",
                "Functions by status (deleted ones left out), read at scrape time.",
                Function,
                labels={"status": FunctionStatus.values},
                transient=TRANSIENT_STATUSES,
            )
        )
