"""Dashboard pages of functions (namespace ``functions``): the list, a function's page, and its writes; and the
code download behind a signed, expiring link (no bearer token).

Every write goes through ``functions.services`` (the API's services) and is audited as the API audits
it; every form is written once however often it is sent (``elbia.pages.write_once``). The function's
page shows its usage this month from ``billing.selectors``: a page may read the selectors of the app
that bills it (models and services keep the one direction billing → functions → resources).
"""

import json
from io import BytesIO

from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from billing.periods import current_month
from billing.selectors import function_usage_for_month
from elbia.api.ids import is_public_id
from elbia.audit.selectors import audit_trail
from elbia.audit.services import audit_record
from elbia.errors import Conflict
from elbia.forms import ConfirmForm, OnceForm
from elbia.links import LinkExpired, LinkInvalid
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
    write_once,
)
from functions.code import CodeUnavailable, code_read
from functions.filtersets import FunctionFilterSet
from functions.forms import FunctionCodeForm, FunctionCreateForm, FunctionEditForm, InvokeForm
from functions.invocations import invocation_invoke
from functions.links import function_code_from_token, function_code_url
from functions.models import TRANSIENT_STATUSES, Function, FunctionStatus, Invocation
from functions.runtimes import RUNTIMES
from functions.selectors import function_list, invocation_list
from functions.services import (
    function_create,
    function_delete,
    function_ensure_deletable,
    function_retry_deploy,
    function_update,
    function_update_code,
)

#: A function's lifecycle as its timeline shows it.
LIFECYCLE = (
    Milestone("created_at", "Created"),
    Milestone("deployment_started", "Deployment started"),
    Milestone("deployed_at", "Deployed", "done"),
    Milestone("failed_at", "Failed", "failed"),
    Milestone("deprecated_at", "Deprecated"),
    Milestone("deleted_at", "Deleted", "done"),
)
#: The sections of a function's page after its status, in order; each is a template reading the page's context.
SECTIONS = ("functions/_configuration.html", "functions/_code.html", "functions/_test.html", "functions/_usage.html")
#: How many invocations the Test panel lists, newest first.
RECENT_INVOCATIONS = 10
#: The Test panel keeps the last event sent (per function, in the session) when it is at most this long.
KEPT_EVENT_BYTES = 64 * 1024
DEFAULT_EVENT = '{\n  "key": "value"\n}'
CONFIGURATION = ("handler", "memory_mb", "timeout_s", "tags")
CREATE_FIELDS = ("name", "runtime", "region", *CONFIGURATION, "environment")


def _function(request, public_id: str) -> Function:
    """One of the account's functions with its resource; anyone else's is a 404."""
    return owned_or_404(function_list(account=request.account).select_related("resource"), public_id)


def _detail_url(function: Function) -> str:
    return reverse("functions:detail", args=[function.public_id])


def _form_context(title: str, submit_label: str, function: Function | None = None) -> dict:
    """What ``form_page.html`` shows around a function form: the way back and the button."""
    crumbs = [("Functions", reverse("functions:list"))]
    if function is not None:
        crumbs.append((function.name, _detail_url(function)))
    return {
        "section": "functions",
        "title": title,
        "breadcrumbs": crumbs,
        "submit_label": submit_label,
        "back_url": crumbs[-1][1],
    }


def _lifecycle_context(request, function: Function) -> dict:
    """The live block: status, what can be done now, and the timeline (two queries with the function's)."""
    events = audit_trail(account=request.account, object_id=function.public_id, limit=TIMELINE_EVENTS)
    status_url = reverse("functions:lifecycle", args=[function.public_id])
    return {
        "function": function,
        "object": function,
        "timeline": timeline(function, LIFECYCLE, events),
        "action_form": OnceForm(),
        **live_context(function, transient=TRANSIENT_STATUSES, status_url=status_url),
    }


@dashboard_page
@require_safe
def function_list_page(request):
    """The account's functions, filtered by status, runtime, region and tag, 50 per page."""
    return list_page(
        request,
        filterset_class=FunctionFilterSet,
        transient=TRANSIENT_STATUSES,
        queryset=function_list(account=request.account),
        template="functions/list.html",
        section="functions",
    )


def _event_key(function: Function) -> str:
    return f"test-event:{function.public_id}"


def _test_context(request, function: Function, form: InvokeForm | None) -> dict:
    """The Test panel: the event form, the invocation asked for (``?invocation=``), the last ten (two queries)."""
    invocations = invocation_list(account=request.account).filter(function=function)
    recent = list(invocations.order_by("-created_at", "-id")[:RECENT_INVOCATIONS])
    shown_id = request.GET.get("invocation", "")
    shown = next((invocation for invocation in recent if invocation.public_id == shown_id), None)
    if shown is None and is_public_id(shown_id, Invocation.PUBLIC_ID_PREFIX):
        shown = invocations.filter(public_id=shown_id).first()
    if form is None:
        form = InvokeForm(initial={"event": request.session.get(_event_key(function), DEFAULT_EVENT)})
    shown_result = json.dumps(shown.result, indent=2, ensure_ascii=False) if shown is not None else ""
    return {"invoke_form": form, "invocations": recent, "shown_invocation": shown, "shown_result": shown_result}


def _detail_page(request, function: Function, *, invoke_form: InvokeForm | None = None, status: int = 200):
    context = {
        "section": "functions",
        "sections": SECTIONS,
        "runtime": RUNTIMES.get(function.runtime),
        "environment_names": sorted(function.environment),  # names only: values are write-only
        "usage": function_usage_for_month(function=function, month=current_month()),
        "code_url": function_code_url(function, request) if function.status != FunctionStatus.DELETED else None,
        "code_form": FunctionCodeForm(),
        **_lifecycle_context(request, function),
        **_test_context(request, function, invoke_form),
    }
    return render(request, "functions/detail.html", context, status=status)


@dashboard_page
@require_safe
def function_detail_page(request, public_id: str):
    """A function: its configuration (environment variable names, never values), lifecycle, a Test panel and
    its usage this month."""
    return _detail_page(request, _function(request, public_id))


@dashboard_page
@require_POST
def function_invoke(request, public_id: str):
    """The Test panel's Invoke: run the function on the event (``invocation_invoke``, as the API does), then
    show the function's page with the outcome (``?invocation=``). The panel's form asks with htmx and swaps
    the panel alone from that page; without JavaScript the browser follows the redirect."""
    function = _function(request, public_id)
    form = InvokeForm(request.POST)
    if form.is_valid():
        event = form.cleaned_data["event"]

        def write() -> str:
            invocation = invocation_invoke(account=request.account, function=function, event=event)
            if len(event) <= KEPT_EVENT_BYTES:
                request.session[_event_key(function)] = event.decode()
            return f"{_detail_url(function)}?invocation={invocation.public_id}#test"

        done = write_once(request, form, write, fallback=f"{_detail_url(function)}#test")
        if done is not None:
            return done
    # htmx swaps only successful answers: the refused form comes back as one, for the panel to show it.
    return _detail_page(request, function, invoke_form=form, status=200 if request.headers.get("HX-Request") else 400)


@dashboard_page
@require_safe
def function_lifecycle_fragment(request, public_id: str):
    """The function page's live block alone, which the page asks for while the status is transient."""
    function = owned_or_404(function_list(account=request.account), public_id)
    return render(request, "functions/_lifecycle.html", _lifecycle_context(request, function))


@dashboard_page
def function_create_page(request):
    """Create a function: name, runtime, handler, memory, timeout, region, tags and environment."""
    form = FunctionCreateForm(request.POST or None)

    def write(data: dict) -> str:
        function = function_create(account=request.account, **{name: data[name] for name in CREATE_FIELDS})
        audit_record(action="function.create", request=request, obj=function, changed_fields=form.filled_fields())
        return _detail_url(function)

    return form_page(
        request,
        form,
        template="form_page.html",
        context=_form_context("New function", "Create function"),
        write=write,
        fallback=reverse("functions:list"),
    )


@dashboard_page
def function_edit_page(request, public_id: str):
    """Change a function's configuration (it redeploys), its tags, or its environment variables."""
    function = _function(request, public_id)
    initial = {name: getattr(function, name) for name in CONFIGURATION}
    form = FunctionEditForm(request.POST or None, initial=initial, variables=function.environment)

    def write(data: dict) -> str:
        changes = {name: data[name] for name in CONFIGURATION if name in form.changed_fields()}
        patch = form.environment_patch()
        if patch:
            changes["environment"] = patch
        if changes:
            function_update(function=function, **changes)
            audit_record(action="function.update", request=request, obj=function, changed_fields=list(changes))
        return _detail_url(function)

    return form_page(
        request,
        form,
        template="functions/edit.html",
        context={**_form_context("Edit configuration", "Save and deploy", function), "function": function},
        write=write,
        fallback=_detail_url(function),
    )


@dashboard_page
def function_code_page(request, public_id: str):
    """Upload a new ZIP archive (``function_update_code``): checked, stored, deployed; refusals under the field."""
    function = _function(request, public_id)
    form = FunctionCodeForm(request.POST or None, request.FILES or None)

    def write(data: dict) -> str:
        function_update_code(function=function, archive=data["code"].read())
        audit_record(action="function.update", request=request, obj=function, changed_fields=["code"])
        return _detail_url(function)

    return form_page(
        request,
        form,
        template="functions/code.html",
        context={**_form_context("Upload a new ZIP", "Upload and deploy", function), "function": function},
        write=write,
        fallback=_detail_url(function),
    )


@dashboard_page
def function_deprecate_page(request, public_id: str):
    """Deprecate an active function after confirmation (``function_update(status="deprecated")``)."""
    function = _function(request, public_id)

    def write(data: dict) -> str:
        function_update(function=function, status="deprecated")
        audit_record(action="function.update", request=request, obj=function, changed_fields=["status"])
        return _detail_url(function)

    return form_page(
        request,
        ConfirmForm(request.POST or None),
        template="functions/deprecate.html",
        context={**_form_context("Deprecate", "Deprecate", function), "function": function},
        write=write,
        fallback=_detail_url(function),
    )


@dashboard_page
def function_delete_page(request, public_id: str):
    """Delete a function and its compute after confirmation, or say why it cannot be deleted now."""
    function = _function(request, public_id)
    try:
        function_ensure_deletable(function=function)
        refusal = ""
    except Conflict as exc:
        refusal = str(exc)

    def write(data: dict) -> str:
        function_delete(function=function)
        audit_record(action="function.delete", request=request, obj=function)
        return _detail_url(function)

    return form_page(
        request,
        ConfirmForm(request.POST or None),
        template="functions/delete.html",
        context={**_form_context("Delete", "Delete", function), "function": function, "refusal": refusal},
        write=write,
        fallback=_detail_url(function),
    )


@dashboard_page
@require_POST
def function_retry(request, public_id: str):
    """Deploy a failed function again, unchanged (``function_retry_deploy``)."""
    function = _function(request, public_id)

    def write() -> str:
        function_retry_deploy(function=function)
        audit_record(action="function.retry_deploy", request=request, obj=function, changed_fields=["status"])
        return _detail_url(function)

    return action_post(request, write, back=_detail_url(function))


@require_safe
def function_code_download(request, token: str):
    """The ZIP archive the link was signed for: 404 if altered or the function is gone, 410 once expired."""
    try:
        public_id, sha256 = function_code_from_token(token)
    except LinkInvalid:
        raise Http404("No such code.") from None
    except LinkExpired:
        return HttpResponse(
            "This code link has expired. Ask the API for a new one.\n", status=410, content_type="text/plain"
        )
    function = Function.objects.filter(public_id=public_id).exclude(status=FunctionStatus.DELETED).first()
    if function is None:
        raise Http404("No such function.")
    try:
        data = code_read(sha256)
    except CodeUnavailable:
        raise Http404("No such code.") from None
    response = FileResponse(
        BytesIO(data), content_type="application/zip", as_attachment=True, filename=f"{function.name}.zip"
    )
    response["Cache-Control"] = "private, max-age=300"
    return response
