from django.apps import AppConfig


class ResourcesConfig(AppConfig):
    name = "resources"

    def ready(self) -> None:
        from elbia.observability import metrics, state
        from resources.models import TRANSIENT_STATUSES, Resource, ResourceStatus, ResourceType

        metrics.register_scrape_collector(
            state.StatusCounts(
                "elbia_resources",
                "Resources by status and type (deleted ones left out), read at scrape time.",
                Resource,
                labels={"status": ResourceStatus.values, "type": ResourceType.values},
                transient=TRANSIENT_STATUSES,
            )
        )
