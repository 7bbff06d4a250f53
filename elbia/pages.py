"""The base of every dashboard page: signed-in customers only, one account, never cached.

Pages live in their apps (``resources/views.py``, ``functions/views.py``, ``billing/views.py``); this is
what they share: the ``dashboard_page`` decorator, paging, list pages driven by the app's FilterSet, the
one mapping of domain errors (``elbia.errors``) and validation errors onto a page, the one-time
handling of write forms (``write_once``, ``form_page``), object lookups that answer 404 for anyone
else's object, and the lifecycle timeline of a detail page.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache

from elbia import cache
from elbia.accounts.middleware import mark_dashboard_response
from elbia.accounts.models import Membership
from elbia.accounts.roles import PAGE_RIGHTS, ROLE_SCOPES, refusal, role_allows
from elbia.api.ids import is_public_id
from elbia.audit.models import ActorType, AuditEvent
from elbia.errors import DomainError
from elbia.forms import FORM_EXPIRED, OnceForm

PAGE_SIZE = 50
#: How long a submitted form's one-time id is remembered (a resubmission within it writes nothing).
FORM_ONCE_TTL = 24 * 3600
ALREADY_SUBMITTED = "That form was already submitted, so nothing was done a second time."
#: How often a page showing something in a transient status asks for its news (seconds).
LIVE_POLL_SECONDS = 2
#: Audit events shown on a detail page's timeline (the latest ones).
TIMELINE_EVENTS = 20


#: The session key of the account the dashboard acts on (a user may be a member of several).
SESSION_ACCOUNT = "elbia_account"


def current_membership(request) -> tuple[Membership | None, list[Membership]]:
    """The membership the dashboard acts with (the session's account, else the user's own, else the first
    one), and all of the user's memberships (the header's account switcher): one query."""
    memberships = list(
        Membership.objects.filter(user_id=request.user.pk).select_related("account").order_by("account__name", "id")
    )
    by_account = {membership.account_id: membership for membership in memberships}
    chosen = by_account.get(request.session.get(SESSION_ACCOUNT)) or by_account.get(request.user.account_id)
    return chosen or (memberships[0] if memberships else None), memberships


def dashboard_page(view):
    """Signed in, member of a customer account, never cached; ``request.account`` is the account it acts on.

    The page's right (``elbia.accounts.roles.PAGE_RIGHTS``, by the name of its URL) is checked against
    the member's role: a page the role does not allow answers 403 saying why. ``request.membership``,
    ``request.role`` and ``request.can`` (the role's rights, ``can.resources_write``) serve the templates.

    A live update (an htmx request) from a browser whose session ended answers ``HX-Refresh``: the
    page reloads, and the reload leads to the sign-in page instead of swapping it into the page.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        membership, memberships = current_membership(request)
        if membership is None:
            return render(request, "accounts/no_account.html", status=403)
        view_name = request.resolver_match.view_name
        if view_name not in PAGE_RIGHTS:
            raise ImproperlyConfigured(f"The page {view_name} needs a row in elbia.accounts.roles.PAGE_RIGHTS.")
        request.account, request.membership, request.memberships = membership.account, membership, memberships
        request.role = membership.role
        request.can = {name.replace(":", "_"): True for name in ROLE_SCOPES[membership.role]}
        right = PAGE_RIGHTS[view_name]
        if right is not None and not role_allows(membership.role, right):
            context = {"message": refusal(membership.role, right)}
            return mark_dashboard_response(render(request, "accounts/forbidden.html", context, status=403))
        return mark_dashboard_response(view(request, *args, **kwargs))

    page = login_required(never_cache(wrapper))

    @wraps(view)
    def entry(request, *args, **kwargs):
        if request.headers.get("HX-Request") and not request.user.is_authenticated:
            return HttpResponse(status=204, headers={"HX-Refresh": "true"})
        return page(request, *args, **kwargs)

    entry.dashboard_page = True  # tests/accounts/test_roles.py finds every page by it
    return entry


def paginate(request, queryset) -> Page:
    """The requested page of ``queryset`` (``?page=``; out-of-range or malformed numbers give the nearest page)."""
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def owned_or_404(queryset, public_id: str):
    """The object of ``queryset`` (already the account's own) with ``public_id``; else the dashboard's 404 page.

    An ID of the wrong shape is a 404 without a query; another account's object is the same 404.
    """
    if not is_public_id(public_id, queryset.model.PUBLIC_ID_PREFIX):
        raise Http404("No such object.")
    return get_object_or_404(queryset, public_id=public_id)


def add_service_errors(form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: under the field it names, else at the top."""
    errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
    for field, field_errors in errors.items():
        form.add_error(field if field in form.fields else None, field_errors)


def report_refusal(request, exc: DomainError) -> None:
    """Tell the customer why a service refused (a conflict, a rule): a message on the next page."""
    messages.error(request, str(exc))


def _once_key(request, form: OnceForm) -> str:
    return f"form-once:{request.user.pk}:{request.path}:{form.cleaned_data['form_id']}"


def form_claim(request, form: OnceForm) -> bool:
    """Claim the one-time id of a valid ``form``: False when that form was already submitted.

    Kept in the cache (``elbia.cache``: this process's memory while Redis does not answer).
    """
    return cache.add(_once_key(request, form), "", timeout=FORM_ONCE_TTL)


def form_release(request, form: OnceForm) -> None:
    """The write was refused: the same form may be sent again (corrected)."""
    cache.delete(_once_key(request, form))


def write_once(request, form: OnceForm, write: Callable[[], str], *, fallback: str) -> HttpResponse | None:
    """Run ``write`` at most once per rendered ``form`` (valid), then redirect where it says.

    ``write`` calls the service, records the audit event and returns the URL to go to. A second
    submission of the same form (a reload, a double click) writes nothing and goes where the first
    led (``fallback`` while the first is still running), saying so. A refusal is put on the form (a
    ValidationError under its fields, a domain error at the top), the form may be sent again, and
    ``None`` is returned: the caller renders the form.
    """
    if not form_claim(request, form):
        messages.warning(request, ALREADY_SUBMITTED)
        return redirect(cache.get(_once_key(request, form)) or fallback)
    try:
        url = write()
    except ValidationError as exc:
        form_release(request, form)
        add_service_errors(form, exc)
        return None
    except DomainError as exc:
        form_release(request, form)
        form.add_error(None, str(exc))
        return None
    cache.set(_once_key(request, form), url, timeout=FORM_ONCE_TTL)  # where a resubmission of this form goes
    return redirect(url)


def form_page(request, form: OnceForm, *, template: str, context: dict, write: Callable[[dict], str], fallback: str):
    """A page with one write form: shown on GET; on POST validated, then written once (``write_once``).

    ``write(cleaned_data)`` calls the service, records the audit event and returns the URL to go to.
    Invalid or refused input shows the form again (400) with each message next to its field.
    """
    context = {**context, "form": form}
    if request.method != "POST":
        return render(request, template, context)
    if form.is_valid():
        done = write_once(request, form, lambda: write(form.cleaned_data), fallback=fallback)
        if done is not None:
            return done
    return render(request, template, context, status=400)


def action_post(request, write: Callable[[], str], *, back: str):
    """A button's POST (no page of its own): written once per rendered button; a refusal is a message on ``back``."""
    form = OnceForm(request.POST)
    if not form.is_valid():
        messages.error(request, FORM_EXPIRED)
        return redirect(back)
    done = write_once(request, form, write, fallback=back)
    if done is not None:
        return done
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
    return redirect(back)


def list_page(
    request, *, filterset_class, queryset, template: str, section: str, context=None, transient: Iterable[str] = ()
):
    """An overview page: the FilterSet's form, then one page of ``queryset`` filtered by it.

    An empty choice means "all" (the form's "All ..." options). Invalid values answer 400 with the
    form showing why. While a row of the page is in a ``transient`` status, the rows ask for
    themselves again (the same page, of which htmx keeps the rows) until none is.
    """
    filterset = filterset_class(request.GET, queryset=queryset, request=request, blank_is_all=True)
    context = {"section": section, "filterset": filterset, "page": None, **(context or {})}
    if not filterset.is_valid():
        return render(request, template, context, status=400)
    filtered = any(request.GET.get(field.name) for field in filterset.page_fields())
    page = paginate(request, filterset.qs)
    live = any(row.status in transient for row in page.object_list)
    context.update(page=page, filtered=filtered, live=live, poll_seconds=LIVE_POLL_SECONDS)
    return render(request, template, context)


# --- Detail pages: the lifecycle timeline and live status ------------------------------------------------


@dataclass(frozen=True)
class Milestone:
    """A lifecycle timestamp of a model shown on its timeline; ``tone`` styles it (``done``, ``failed``)."""

    field: str
    label: str
    tone: str = ""


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a timeline: a lifecycle milestone, or an audited action with who took it."""

    at: datetime
    label: str
    detail: str = ""
    actor: str = ""
    tone: str = ""


_VERBS = {
    "create": "Created",
    "update": "Changed",
    "delete": "Deletion requested",
    "retry_provisioning": "Provisioning retried",
    "retry_deploy": "Deployment retried",
}
_ACTORS = {ActorType.STAFF: "Elbia staff", ActorType.SYSTEM: "Elbia"}


def _action_entry(event: AuditEvent) -> TimelineEntry:
    verb = event.action.rpartition(".")[2]
    label = _VERBS.get(verb, verb.replace("_", " ").capitalize())
    if verb == "update" and event.changed_fields:
        label = f"Changed {', '.join(event.changed_fields)}"
    actor = _ACTORS.get(event.actor_type, event.actor)
    return TimelineEntry(at=event.created_at, label=label, actor=actor, tone="action")


def timeline(obj, milestones: Sequence[Milestone], events: Iterable[AuditEvent]) -> list[TimelineEntry]:
    """``obj``'s lifecycle, oldest first: its milestones that happened, and the audited actions on it.

    A milestone at the same moment as an earlier one is the same step (creation requests provisioning)
    and is left out. The ``failed`` milestone carries the failure reason.
    """
    entries, seen = [], set()
    for milestone in milestones:
        at = getattr(obj, milestone.field)
        if at is None or at in seen:
            continue
        seen.add(at)
        detail = obj.failure_reason if milestone.tone == "failed" else ""
        entries.append(TimelineEntry(at=at, label=milestone.label, detail=detail, tone=milestone.tone))
    entries += [_action_entry(event) for event in events]
    return sorted(entries, key=lambda entry: entry.at)


def live_context(obj, *, transient: Iterable[str], status_url: str) -> dict:
    """What a live status block needs: whether ``obj`` is still changing, and where to ask for its news."""
    return {"live": obj.status in transient, "status_url": status_url, "poll_seconds": LIVE_POLL_SECONDS}
