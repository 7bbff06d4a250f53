"""Dashboard pages of resources (namespace ``resources``): the list, a resource's page, and its writes.

Every write goes through ``resources.services`` (the API's services) and is audited as the API audits
it; every form is written once however often it is sent (``elbia.pages.write_once``).
"""

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from elbia.audit.selectors import audit_trail
from elbia.audit.services import audit_record
from elbia.errors import Conflict
from elbia.forms import ConfirmForm, OnceForm
from elbia.pages import (
    TIMELINE_EVENTS,
    Milestone,
    action_post,
    dashboard_page,
    form_page,
    list_page,
    live_context,
    owned_or_404,
    timeline,
)
from resources.catalog import INSTANCE_TYPES
from resources.filtersets import ResourceFilterSet
from resources.forms import ComputeCreateForm, ResourceEditForm, VpcCreateForm, instance_type_label
from resources.models import TRANSIENT_STATUSES, Resource, ResourceType
from resources.selectors import resource_list, vpc_choices, vpc_live_resources
from resources.services import (
    resource_create,
    resource_delete,
    resource_ensure_deletable,
    resource_retry_provisioning,
    resource_update,
    vpc_create,
)

#: A resource's lifecycle as its timeline shows it.
LIFECYCLE = (
    Milestone("created_at", "Created"),
    Milestone("provisioning_started_at", "Provisioning started"),
    Milestone("provisioned_at", "Active", "done"),
    Milestone("failed_at", "Failed", "failed"),
    Milestone("deleting_started_at", "Deletion started"),
    Milestone("deleted_at", "Deleted", "done"),
)
#: The live resources of a VPC a page lists (the rest are counted in the Resources list).
MEMBERS_SHOWN = 25


def _resource(request, public_id: str) -> Resource:
    """One of the account's resources with its VPC and function; anyone else's is a 404."""
    return owned_or_404(resource_list(account=request.account).select_related("vpc", "function"), public_id)


def _detail_url(resource: Resource) -> str:
    return reverse("resources:detail", args=[resource.public_id])


def _form_context(title: str, submit_label: str, resource: Resource | None = None) -> dict:
    """What ``form_page.html`` shows around a resource form: the way back and the button."""
    crumbs = [("Resources", reverse("resources:list"))]
    if resource is not None:
        crumbs.append((resource.name or resource.public_id, _detail_url(resource)))
    return {
        "section": "resources",
        "title": title,
        "breadcrumbs": crumbs,
        "submit_label": submit_label,
        "back_url": crumbs[-1][1],
    }


def _lifecycle_context(request, resource: Resource) -> dict:
    """The live block: status, what can be done now, and the timeline (two queries with the resource's)."""
    events = audit_trail(account=request.account, object_id=resource.public_id, limit=TIMELINE_EVENTS)
    status_url = reverse("resources:lifecycle", args=[resource.public_id])
    return {
        "resource": resource,
        "object": resource,
        "timeline": timeline(resource, LIFECYCLE, events),
        "action_form": OnceForm(),
        **live_context(resource, transient=TRANSIENT_STATUSES, status_url=status_url),
    }


def _network(request, resource: Resource) -> dict:
    """The VPC a resource is in (or is), with up to ``MEMBERS_SHOWN`` of its live resources: one query."""
    vpc = resource if resource.type == ResourceType.VPC else resource.vpc
    if vpc is None:
        return {"network": None, "members": [], "more_members": False}
    members = vpc_live_resources(account=request.account, vpc=vpc, limit=MEMBERS_SHOWN + 1)
    return {"network": vpc, "members": members[:MEMBERS_SHOWN], "more_members": len(members) > MEMBERS_SHOWN}


@dashboard_page
@require_safe
def resource_list_page(request):
    """The account's resources, filtered by status, type and region, 50 per page."""
    return list_page(
        request,
        filterset_class=ResourceFilterSet,
        transient=TRANSIENT_STATUSES,
        queryset=resource_list(account=request.account).select_related("vpc", "function"),
        template="resources/list.html",
        section="resources",
    )


@dashboard_page
@require_safe
def resource_detail_page(request, public_id: str):
    """A resource: every field the API shows, its lifecycle, its VPC and the VPC's live resources."""
    resource = _resource(request, public_id)
    context = {
        "section": "resources",
        "instance_type": instance_type_label(kind) if (kind := INSTANCE_TYPES.get(resource.instance_type)) else "",
        **_network(request, resource),
        **_lifecycle_context(request, resource),
    }
    return render(request, "resources/detail.html", context)


@dashboard_page
@require_safe
def resource_lifecycle_fragment(request, public_id: str):
    """The resource page's live block alone, which the page asks for while the status is transient."""
    resource = owned_or_404(resource_list(account=request.account), public_id)
    return render(request, "resources/_lifecycle.html", _lifecycle_context(request, resource))


def _created(request, resource: Resource, form) -> str:
    audit_record(action="resource.create", request=request, obj=resource, changed_fields=form.filled_fields())
    return _detail_url(resource)


@dashboard_page
def resource_create_page(request):
    """Create a compute instance: region, instance type (vCPUs and memory from the catalog), VPC or ``default``."""
    form = ComputeCreateForm(request.POST or None, vpcs=vpc_choices(account=request.account))

    def write(data: dict) -> str:
        fields = {name: data[name] for name in ("region", "instance_type", "vpc", "name", "tags")}
        return _created(request, resource_create(account=request.account, **fields), form)

    return form_page(
        request,
        form,
        template="form_page.html",
        context=_form_context("New compute instance", "Create instance"),
        write=write,
        fallback=reverse("resources:list"),
    )


@dashboard_page
def vpc_create_page(request):
    """Create a VPC: name, region, CIDR block."""
    form = VpcCreateForm(request.POST or None)

    def write(data: dict) -> str:
        fields = {name: data[name] for name in ("region", "name", "cidr_block", "tags")}
        return _created(request, vpc_create(account=request.account, **fields), form)

    return form_page(
        request,
        form,
        template="form_page.html",
        context=_form_context("New VPC", "Create VPC"),
        write=write,
        fallback=reverse("resources:list"),
    )


@dashboard_page
def resource_edit_page(request, public_id: str):
    """Rename a resource or replace its tags (``resource_update``)."""
    resource = _resource(request, public_id)
    form = ResourceEditForm(request.POST or None, initial={"name": resource.name, "tags": resource.tags})

    def write(data: dict) -> str:
        changed = form.changed_fields()
        if changed:
            resource_update(resource=resource, **{name: data[name] for name in changed})
            audit_record(action="resource.update", request=request, obj=resource, changed_fields=changed)
        return _detail_url(resource)

    return form_page(
        request,
        form,
        template="form_page.html",
        context=_form_context("Rename or tag", "Save changes", resource),
        write=write,
        fallback=_detail_url(resource),
    )


@dashboard_page
def resource_delete_page(request, public_id: str):
    """Delete a resource after confirmation; the page says what goes with it, or why it cannot go now."""
    resource = _resource(request, public_id)
    try:
        resource_ensure_deletable(resource=resource)
        refusal = ""
    except Conflict as exc:
        refusal = str(exc)

    def write(data: dict) -> str:
        resource_delete(resource=resource)
        audit_record(action="resource.delete", request=request, obj=resource)
        return _detail_url(resource)

    return form_page(
        request,
        ConfirmForm(request.POST or None),
        template="resources/delete.html",
        context={
            **_form_context("Delete", "Delete", resource),
            "resource": resource,
            "refusal": refusal,
            **(_network(request, resource) if resource.type == ResourceType.VPC else {}),
        },
        write=write,
        fallback=_detail_url(resource),
    )


@dashboard_page
@require_POST
def resource_retry(request, public_id: str):
    """Provision a failed resource again (``resource_retry_provisioning``)."""
    resource = _resource(request, public_id)

    def write() -> str:
        resource_retry_provisioning(resource=resource)
        audit_record(action="resource.retry_provisioning", request=request, obj=resource, changed_fields=["status"])
        return _detail_url(resource)

    return action_post(request, write, back=_detail_url(resource))
