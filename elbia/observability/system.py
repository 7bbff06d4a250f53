"""The admin's "System" page (``/admin/system/``, staff only): the machinery at a glance.

The queues (from the broker), the outbox backlog, every lifecycle model's rows by status and those stuck in a
transient status longer than ``ELBIA_STUCK_AFTER`` (the reaper's threshold), sections the apps add (billing:
the last invoice runs), and the readiness of each dependency (the checks of ``/readyz``). Each part costs a
fixed number of queries whatever the number of rows, and links to the matching admin list.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from elbia import health
from elbia.observability import metrics, state

#: How many stuck rows of each model the page names (the oldest first); the count says how many there are.
STUCK_SHOWN = 10


@dataclass
class Section:
    """A table an app adds to the page: a title, column headings, rows of (text, link or "") cells."""

    title: str
    columns: list[str]
    rows: list[list[tuple[str, str]]] = field(default_factory=list)
    empty: str = "Nothing yet."


#: Callables returning a Section, registered by the apps (``register_section`` in their ``AppConfig.ready``).
SECTIONS: list = []


def register_section(build) -> None:
    if build not in SECTIONS:
        SECTIONS.append(build)


def changelist(model, **filters) -> str:
    return changelist_by_label(model._meta.app_label, model._meta.model_name, **filters)


def changelist_by_label(app_label: str, model_name: str, **filters) -> str:
    """The admin list of that model, filtered; "" when the model has none."""
    try:
        url = reverse(f"admin:{app_label}_{model_name}_changelist")
    except NoReverseMatch:
        return ""
    return url + ("?" + urlencode(filters) if filters else "")


def change_page(obj) -> str:
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])
    except NoReverseMatch:
        return ""


def lifecycle(collector: state.StatusCounts, *, now) -> dict:
    """One lifecycle model: rows by status (one query), and the stuck ones (one query: the oldest, and a count)."""
    model = collector.model
    cutoff = now - timedelta(seconds=settings.ELBIA_STUCK_AFTER)
    stuck_rows = list(
        model._default_manager.filter(status__in=collector.transient, updated_at__lt=cutoff)
        .order_by("updated_at")
        .only("pk", "public_id", "status", "updated_at")[: STUCK_SHOWN + 1]
    )
    return {
        "name": model._meta.verbose_name_plural,
        "list_url": changelist(model),
        "statuses": [
            {"status": status, "count": count, "url": changelist(model, status__exact=status)}
            for status, count in collector.by_status().items()
        ],
        "stuck": [
            {"id": row.public_id, "status": row.status, "since": row.updated_at, "url": change_page(row)}
            for row in stuck_rows[:STUCK_SHOWN]
        ],
        "more_stuck": len(stuck_rows) > STUCK_SHOWN,
    }


def readiness() -> list[dict]:
    results = []
    for name, check in health.CHECKS.items():
        try:
            check()
            results.append({"name": name, "ok": True, "error": ""})
        except Exception as exc:  # any failure means "not ready", shown as /readyz would log it
            results.append({"name": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]})
    return results


def system_view(request):
    now = timezone.now()
    collectors = metrics.SCRAPE_COLLECTORS
    queues = next((c for c in collectors if isinstance(c, state.QueueDepths)), state.QueueDepths()).depths()
    outbox = state.OutboxBacklog.backlog()
    context = {
        **admin.site.each_context(request),
        "title": "System",
        "now": now,
        "queues": sorted(queues.items()) if queues is not None else None,
        "outbox": {**outbox, "age": (now - outbox["oldest"]) if outbox["oldest"] else None},
        "outbox_url": changelist_by_label("elbia", "outboxmessage", sent_at__isnull="True"),
        "stuck_after": timedelta(seconds=settings.ELBIA_STUCK_AFTER),
        "lifecycles": [lifecycle(c, now=now) for c in collectors if isinstance(c, state.StatusCounts)],
        "sections": [build() for build in SECTIONS],
        "readiness": readiness(),
    }
    return TemplateResponse(request, "admin/system.html", context)
