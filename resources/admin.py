"""Resources in the admin: found by public ID, account, status, type or region; changed only by actions.

Nothing about a resource is edited by hand: staff retry the provisioning of failed resources and
deprovision resources through the services the API uses (``resource_retry_provisioning``,
``resource_delete``), which check the lifecycle and queue the work.

The table holds millions of rows. The list is ordered by id (the primary key index; ids follow
creation), filters offer the catalog's values without reading the table, and a search for a public ID
is a unique-index lookup.
"""

from django.contrib import admin

from elbia.admin import AccountFilter, ReadOnlyAdmin, changelist_url, choices_filter, link, links, service_action
from elbia.api.ids import public_id_pattern
from resources.catalog import INSTANCE_TYPES, REGIONS
from resources.models import Resource, ResourceStatus
from resources.services import resource_delete, resource_retry_provisioning


@admin.register(Resource)
class ResourceAdmin(ReadOnlyAdmin):
    list_display = ["public_id", "name", "type", "status", "region", "instance_type", "account_link", "created_at"]
    list_select_related = ["account"]
    list_filter = [
        "status",
        "type",
        choices_filter("region", [(code, code) for code in REGIONS]),
        choices_filter("instance_type", [(name, name) for name in INSTANCE_TYPES], "instance type"),
        ("created_at", admin.DateFieldListFilter),
        AccountFilter,
    ]
    search_fields = ["name"]
    search_account_names = True
    search_help_text = "A resource ID (RES_..., exact), or part of a resource's or an account's name."
    exact_search = ((public_id_pattern(Resource.PUBLIC_ID_PREFIX), "public_id"),)
    ordering = ["-id"]
    sortable_by = ["public_id"]
    fields = [
        "public_id",
        "account_link",
        "type",
        "name",
        "status",
        "failure_reason",
        "region",
        "instance_type",
        "memory",
        "vpc_link",
        "cidr_block",
        "function_link",
        "tags",
        "created_at",
        "updated_at",
        "provisioning_started_at",
        "provisioned_at",
        "failed_at",
        "deleting_started_at",
        "deleted_at",
        "last_execution",
        "requeue_count",
        "related",
    ]
    actions = ["retry_provisioning", "deprovision"]

    @admin.display(description="account", ordering="account__name")
    def account_link(self, resource: Resource) -> str:
        return link(resource.account)

    @admin.display(description="VPC")
    def vpc_link(self, resource: Resource) -> str:
        return link(resource.vpc, resource.vpc.public_id if resource.vpc else None)

    @admin.display(description="function")
    def function_link(self, resource: Resource) -> str:
        return link(getattr(resource, "function", None))  # the reverse one-to-one raises AttributeError

    @admin.display(description="see also")
    def related(self, resource: Resource) -> str:
        items = [("Audit events of this resource", changelist_url("audit.auditevent", q=resource.public_id))]
        if resource.type == "vpc":
            items.append(("Resources in this VPC", changelist_url(Resource, vpc=resource.pk)))
        return links(items)

    @service_action(
        description="Retry provisioning of the selected failed resources",
        verb="retry_provisioning",
        changed_fields=["status"],
    )
    def retry_provisioning(self, request, resource: Resource) -> bool:
        resource_retry_provisioning(resource=resource)
        return True

    @service_action(
        description="Deprovision the selected resources",
        verb="delete",
        changed_fields=["status"],
        confirm="These resources will be torn down at the provider and then marked deleted, as when their owner "
        "deletes them through the API. Only active or failed resources can be deprovisioned; a VPC only once "
        "nothing runs in it, a function's resource only by deleting its function.",
    )
    def deprovision(self, request, resource: Resource) -> bool:
        if resource.status in (ResourceStatus.DELETING, ResourceStatus.DELETED):
            return False
        resource_delete(resource=resource)
        return True
