"""What every Elbia admin page shares: the audit trail, service-backed actions, and pages that stay fast.

- **Audit.** ``ElbiaModelAdmin`` records an ``AuditEvent`` (actor type ``staff``) next to Django's own
  ``LogEntry`` for every add, change and delete made in the admin (``log_addition``, ``log_change``,
  ``log_deletions``) and for every object an action changes (``run_action``): the one place that records.
- **Actions** call a service on each selected object (``service_action``), never edit fields. Dangerous
  ones first show a confirmation page, as Django's "delete selected" does. They need the
  ``audit.run_admin_actions`` permission (the ``operator`` group); without it they are not offered, and a
  forged action POST is a 403.
- **Big tables.** No full-table ``COUNT(*)`` (``EstimatedCountPaginator``, no "N total" figure, no facet
  counts), related rows joined in the list query (``list_select_related``), filters that cost no query or
  an indexed one (``AccountFilter``, choices from the code's catalogs), exact ID lookups before any
  free-text search (``exact_search``).
"""

import json
import re
from collections.abc import Callable, Iterable
from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, Q
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst

from elbia.audit.services import audit_record
from elbia.errors import DomainError

#: The permission every admin action requires (held by the ``operator`` group and by superusers).
RUN_ACTIONS_PERMISSION = "audit.run_admin_actions"
#: The most objects one action run may touch: staff fix things one page at a time; bulk work belongs to jobs.
MAX_ACTION_OBJECTS = 100
#: A search matches the rows of at most this many accounts by name (the first, by name).
MAX_ACCOUNT_MATCHES = 100


# --- Pagination without COUNT(*) -------------------------------------------------------------------


def planner_estimate(queryset) -> int | None:
    """PostgreSQL's estimate of how many rows ``queryset`` returns (``EXPLAIN``: no row is read)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().query.get_compiler(using=queryset.db).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to ``exact_limit`` rows (one bounded query); past that, takes PostgreSQL's estimate.

    A list of millions of rows then costs an index scan of one page, not a scan of the table to count it.
    The estimate (the planner's, from the table statistics) sets how many page links are shown: pages past
    the real end come out empty, pages before it are exact. Other databases count exactly.
    """

    exact_limit = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        bounded = queryset.order_by()[: self.exact_limit + 1].count()
        if bounded <= self.exact_limit:
            return bounded
        estimate = planner_estimate(queryset)
        if estimate is None:
            return queryset.count()
        return max(estimate, bounded)


# --- Filters -----------------------------------------------------------------------------------------


class AccountFilter(admin.SimpleListFilter):
    """``?account=<id>``: one account's rows, as the links on an account's page open them.

    Lists no accounts (there may be a million): it shows the chosen one, and "All" to clear it.
    """

    title = "account"
    parameter_name = "account"

    def has_output(self) -> bool:
        return True  # applied even when the id names no account (the list is then empty, not everything)

    def lookups(self, request, model_admin):
        from elbia.accounts.models import Account

        value = self.value()
        if value is None or not value.isascii() or not value.isdigit():
            return []
        return [(value, name) for name in Account.objects.filter(pk=int(value)).values_list("name", flat=True)]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if not value.isascii() or not value.isdigit():
            raise IncorrectLookupParameters(f"Account must be an account id, not {value[:20]!r}.")
        return queryset.filter(account_id=int(value))


def choices_filter(field: str, choices: Iterable[tuple[str, str]], title: str = "") -> type[admin.SimpleListFilter]:
    """A filter on ``field`` offering fixed ``choices`` (e.g. a catalog): no ``SELECT DISTINCT`` over the table."""
    choices = list(choices)

    class ChoicesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request, model_admin):
            return choices

        def queryset(self, request, queryset):
            return queryset if self.value() is None else queryset.filter(**{field: self.value()})

    ChoicesFilter.title = title or field.replace("_", " ")
    ChoicesFilter.__name__ = f"{field.title().replace('_', '')}Filter"
    return ChoicesFilter


# --- Links -------------------------------------------------------------------------------------------


def admin_url(obj: Model) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def changelist_url(model: type[Model] | str, **params) -> str:
    """The admin list of ``model`` (a model or its ``"app_label.model_name"``), filtered by ``params``."""
    label = model if isinstance(model, str) else model._meta.label_lower
    url = reverse(f"admin:{label.replace('.', '_')}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def link(obj: Model | None, text=None) -> str:
    """A link to ``obj``'s admin page (``-`` for no object)."""
    if obj is None:
        return "-"
    return format_html('<a href="{}">{}</a>', admin_url(obj), obj if text is None else text)


def links(items: Iterable[tuple[str, str]]) -> str:
    """A list of ``(label, url)`` links, one per line."""
    return format_html_join("", '<a href="{}">{}</a><br>', ((url, label) for label, url in items))


# --- Actions -----------------------------------------------------------------------------------------


def _reason(exc: ValidationError | DomainError) -> str:
    """A refusal as staff read it: a domain error's sentence, or a validation error's messages."""
    return " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


def service_action(
    *, description: str, verb: str, changed_fields: Iterable[str] = (), confirm: str = "", audit: bool = True
) -> Callable:
    """Make an admin action out of ``apply(modeladmin, request, obj) -> bool`` (True: it changed ``obj``).

    ``apply`` calls one service for one object; a ``ValidationError`` or a domain error it raises refuses that
    object (named in the message) and the others go on. Each change is recorded as ``<model>.<verb>``
    (unless ``audit`` is False: the service records it itself).
    ``confirm``: the question a confirmation page asks first (dangerous actions).
    """
    changed_fields = tuple(changed_fields)

    def decorate(apply: Callable) -> Callable:
        @admin.action(description=description, permissions=["run_actions"])
        @wraps(apply)
        def action(modeladmin, request, queryset):
            return modeladmin.run_action(
                request,
                queryset,
                apply=apply,
                name=apply.__name__,
                description=description,
                verb=verb,
                changed_fields=changed_fields if audit else None,
                confirm=confirm,
            )

        return action

    return decorate


# --- The base ModelAdmin -----------------------------------------------------------------------------


class ElbiaModelAdmin(admin.ModelAdmin):
    """The base of every Elbia admin: audited writes, service actions, no full-table counts.

    Subclasses may set ``audit_name`` (the prefix of their audit actions; default: the model's name),
    ``exact_search``: ``(regex, lookup)`` pairs; a search whose every term matches one of the regexes
    (a public ID, say) is an exact, indexed lookup instead of Django's free-text search; and
    ``search_account_names``: a search also finds the rows of the accounts whose name contains it,
    looked up first (a join would make the database read both tables whole for the OR).
    """

    audit_name = ""
    exact_search: tuple[tuple[str, str], ...] = ()
    search_account_names = False
    #: Fields no URL lookup may filter on (``?password__startswith=``): Django allows any local field.
    private_fields: tuple[str, ...] = ()
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50

    # --- the audit trail

    def account_of(self, obj):
        """The account an audit record about ``obj`` belongs to."""
        return getattr(obj, "account", None)

    def audit(self, request, obj, verb: str, changed_fields: Iterable[str] = ()) -> None:
        audit_record(
            action=f"{self.audit_name or obj._meta.model_name}.{verb}",
            request=request,
            account=self.account_of(obj),
            obj=obj,
            changed_fields=changed_fields,
        )

    def construct_change_message(self, request, form, formsets, add=False):
        # log_change/log_addition only receive the human message; keep the field names for the audit record.
        changed = list(form.changed_data)
        changed += [formset.model._meta.model_name for formset in formsets or () if formset.has_changed()]
        request.audit_changed_fields = changed
        return super().construct_change_message(request, form, formsets, add)

    def log_addition(self, request, obj, message):
        entry = super().log_addition(request, obj, message)
        self.audit(request, obj, "create", getattr(request, "audit_changed_fields", ()))
        return entry

    def log_change(self, request, obj, message):
        entry = super().log_change(request, obj, message)
        changed = getattr(request, "audit_changed_fields", None)
        if changed is None or changed:  # a form saved without any change changed nothing
            self.audit(request, obj, "update", changed or ())
        return entry

    def log_deletions(self, request, queryset):
        entries = super().log_deletions(request, queryset)
        for obj in queryset:
            self.audit(request, obj, "delete")
        return entries

    # --- actions

    def has_run_actions_permission(self, request) -> bool:
        return request.user.has_perm(RUN_ACTIONS_PERMISSION)

    def changelist_view(self, request, extra_context=None):
        if request.method == "POST" and "action" in request.POST and not self.get_actions(request):
            raise PermissionDenied  # an action posted by someone who is offered none
        return super().changelist_view(request, extra_context)

    def run_action(
        self,
        request,
        queryset,
        *,
        apply: Callable,
        name: str,
        description: str,
        verb: str,
        changed_fields: tuple[str, ...] | None,
        confirm: str,
    ):
        """Confirm if asked to, then ``apply`` the service to each selected object and report what happened.

        Each change is audited as ``<model>.<verb>`` with ``changed_fields``; None: the service audits it.
        """
        if not self.has_run_actions_permission(request):
            raise PermissionDenied
        opts = self.model._meta
        selected = list(queryset[: MAX_ACTION_OBJECTS + 1])
        if len(selected) > MAX_ACTION_OBJECTS:
            self.message_user(
                request,
                f"Select at most {MAX_ACTION_OBJECTS} {opts.verbose_name_plural} for one action; nothing was done.",
                messages.ERROR,
            )
            return None
        if confirm and request.POST.get("post") != "yes":
            return self.confirm_action(request, selected, name=name, description=description, question=confirm)

        changed, unchanged, refused = [], [], []
        for obj in selected:
            try:
                did_change = apply(self, request, obj)
            except (ValidationError, DomainError) as exc:
                refused.append(f"{obj}: {_reason(exc)}")
                continue
            if did_change:
                if changed_fields is not None:
                    self.audit(request, obj, verb, changed_fields)
                changed.append(obj)
            else:
                unchanged.append(obj)
        label = capfirst(str(description))
        if changed:
            self.message_user(request, f"{label}: done for {len(changed)} ({', '.join(map(str, changed))}).")
        if unchanged:
            self.message_user(
                request,
                f"{label}: nothing to do for {len(unchanged)} ({', '.join(map(str, unchanged))}).",
                messages.WARNING,
            )
        if refused:
            self.message_user(request, f"{label}: refused for {'; '.join(refused)}", messages.ERROR)
        return None

    def confirm_action(self, request, objects: list, *, name: str, description: str, question: str):
        """The intermediate page of a dangerous action: what will be done to which objects, and a Yes button."""
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?",
            "subtitle": capfirst(str(description)),
            "question": question,
            "objects": [(obj, admin_url(obj)) for obj in objects],
            "action_name": name,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "opts": opts,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/elbia/action_confirmation.html", context)

    # --- search

    def lookup_allowed(self, lookup, value, request=None) -> bool:
        if lookup.split("__", 1)[0] in self.private_fields:
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_search_results(self, request, queryset, search_term):
        terms = search_term.split()
        if terms and self.exact_search:
            matched = [
                [lookup for pattern, lookup in self.exact_search if re.fullmatch(pattern, term)] for term in terms
            ]
            if all(matched):
                for term, lookups in zip(terms, matched, strict=True):
                    condition = Q()
                    for lookup in lookups:
                        condition |= Q(**{lookup: term})
                    queryset = queryset.filter(condition)
                return queryset, False
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if self.search_account_names and search_term.strip():
            from elbia.accounts.models import Account

            named = Account.objects.filter(name__icontains=search_term.strip()).values_list("id", flat=True)
            accounts = list(named[:MAX_ACCOUNT_MATCHES])
            if accounts:
                found = found | queryset.filter(account_id__in=accounts)
        return found, may_have_duplicates


class ReadOnlyAdmin(ElbiaModelAdmin):
    """A model staff look at but never edit by hand: what changes it goes through actions and services."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
