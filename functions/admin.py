"""Functions in the admin: found by public ID, name, account, status or runtime; nothing edited by hand.

Listed like resources (ordered by id, filters that read no table, exact public-ID search); each page
links to the function's resource, usage and audit events. Environment values are never shown: they may
hold the customer's secrets (only their names are). A failed deployment is retried through
``function_retry_deploy``, which provisions the function's resource again first if that is what failed.
"""

from django.contrib import admin

from elbia.admin import AccountFilter, ReadOnlyAdmin, changelist_url, choices_filter, link, links, service_action
from elbia.api.ids import public_id_pattern
from functions.models import Function, FunctionStatus
from functions.runtimes import RUNTIMES
from functions.services import function_retry_deploy
from resources.catalog import REGIONS
from resources.models import Resource


@admin.register(Function)
class FunctionAdmin(ReadOnlyAdmin):
    """Functions for staff: read-only, environment variables by name only; a failed deployment can be retried."""

    list_display = ["public_id", "name", "runtime", "status", "region", "memory_mb", "account_link", "created_at"]
    list_select_related = ["account"]
    list_filter = [
        "status",
        choices_filter("runtime", [(name, name) for name in RUNTIMES]),
        choices_filter("region", [(code, code) for code in REGIONS]),
        ("created_at", admin.DateFieldListFilter),
        AccountFilter,
    ]
    search_fields = ["name"]
    search_account_names = True
    search_help_text = (
        "A function ID (FUNC_...) or its resource's ID (RES_...), exact; or part of a function's or an account's name."
    )
    exact_search = (
        (public_id_pattern(Function.PUBLIC_ID_PREFIX), "public_id"),
        (public_id_pattern(Resource.PUBLIC_ID_PREFIX), "resource__public_id"),
    )
    ordering = ["-id"]
    sortable_by = ["public_id"]
    fields = [
        "public_id",
        "account_link",
        "name",
        "status",
        "failure_reason",
        "runtime",
        "handler",
        "memory_mb",
        "timeout_s",
        "region",
        "tags",
        "environment_names",
        "resource_link",
        "created_at",
        "updated_at",
        "deployment_started",
        "deployed_at",
        "failed_at",
        "deprecated_at",
        "deleted_at",
        "last_executed",
        "related",
    ]
    actions = ["retry_deploy"]

    def lookup_allowed(self, lookup: str, value: str, request=None) -> bool:
        # Values are write-only: ?environment__KEY__startswith=... would let a changelist guess them (400 instead).
        if lookup.split("__", 1)[0] == "environment":
            return False
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description="account", ordering="account__name")
    def account_link(self, function: Function) -> str:
        return link(function.account)

    @admin.display(description="resource")
    def resource_link(self, function: Function) -> str:
        return link(function.resource, function.resource.public_id if function.resource else None)

    @admin.display(description="environment variables")
    def environment_names(self, function: Function) -> str:
        return ", ".join(sorted(function.environment)) or "-"

    @admin.display(description="see also")
    def related(self, function: Function) -> str:
        return links(
            [
                ("Audit events of this function", changelist_url("audit.auditevent", q=function.public_id)),
                ("Usage events of this function", changelist_url("billing.usageevent", q=function.public_id)),
            ]
        )

    @service_action(
        description="Retry the failed deployment of the selected functions",
        verb="retry_deploy",
        changed_fields=["status"],
    )
    def retry_deploy(self, request, function: Function) -> bool:
        if function.status in (FunctionStatus.CREATED, FunctionStatus.DEPLOYING):
            return False  # already on its way
        function_retry_deploy(function=function)
        return True
