"""The audit trail in the admin: read-only, filtered by action, actor type, date and account; searched by exact values.

The table grows with every write of every customer, so every query here is an indexed one: the list
walks ``audit_created`` (or the account's, or the action's, index), the action filter's choices come
from a loose index scan of ``audit_action_created``, and a search matches one whole value (an object
ID, a request ID, an account's name, a username), each through its index.
"""

import re
from urllib.parse import urlencode

from django.contrib import admin
from django.db import connections
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from elbia.accounts.models import Account, User
from elbia.admin import AccountFilter, ReadOnlyAdmin, link
from elbia.api.ids import public_id_pattern
from elbia.audit.models import AuditEvent

#: Public ID prefixes and the changelist that finds such an ID (the exact-ID search is one index lookup).
PUBLIC_ID_CHANGELISTS = {"RES_": "resources_resource", "FUNC_": "functions_function", "INV_": "billing_invoice"}
#: Object types recorded by primary key, and their change page.
PK_CHANGE_PAGES = {
    "account": "accounts_account",
    "user": "accounts_user",
    "apitoken": "accounts_apitoken",
    "price": "billing_price",
    "group": "auth_group",
}
PUBLIC_ID = re.compile(public_id_pattern(*PUBLIC_ID_CHANGELISTS))
#: How many accounts (or users) of the searched name one search matches at most.
SEARCH_MATCHES = 100


def distinct_values(model, column: str, limit: int = 200) -> list[str]:
    """The distinct values of an indexed column, read by a loose index scan: one index probe per value."""
    connection = connections[model.objects.db]
    table, column = connection.ops.quote_name(model._meta.db_table), connection.ops.quote_name(column)
    sql = (
        f"WITH RECURSIVE found(value) AS ("  # noqa: S608 (names from the model, values as parameters)
        f" SELECT MIN({column}) FROM {table}"
        f" UNION ALL"
        f" SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > found.value) FROM found"
        f" WHERE found.value IS NOT NULL"
        f") SELECT value FROM found WHERE value IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


class ActionFilter(admin.SimpleListFilter):
    """The actions recorded so far (``resource.create``, ``invoice.void``, ...)."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(action, action) for action in distinct_values(AuditEvent, "action")]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(action=self.value())


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "action",
        "actor_type",
        "actor",
        "account_link",
        "object_link",
        "changed",
        "ip_address",
        "request_id",
    ]
    list_select_related = ["account"]
    list_filter = [ActionFilter, "actor_type", ("created_at", admin.DateFieldListFilter), AccountFilter]
    search_fields = ["object_id", "request_id", "account__name", "actor_user__username"]
    search_help_text = (
        "One whole value: an object ID (RES_..., or a token's number), a request ID, an account's name or "
        "a username (names without regard to case)."
    )
    sortable_by = ["created_at"]  # the only order an index serves on the whole table
    fields = [
        "created_at",
        "action",
        "actor_type",
        "actor",
        "actor_user_link",
        "account_link",
        "object_type",
        "object_id",
        "object_link",
        "changed_fields",
        "ip_address",
        "request_id",
        "request_events",
    ]

    @admin.display(description="account")
    def account_link(self, event: AuditEvent) -> str:
        return link(event.account)

    @admin.display(description="actor user")
    def actor_user_link(self, event: AuditEvent) -> str:
        return link(event.actor_user)

    @admin.display(description="object")
    def object_link(self, event: AuditEvent) -> str:
        return object_link(event.object_type, event.object_id)

    @admin.display(description="changed fields")
    def changed(self, event: AuditEvent) -> str:
        return ", ".join(event.changed_fields) or "-"

    @admin.display(description="same request")
    def request_events(self, event: AuditEvent) -> str:
        if not event.request_id:
            return "-"
        url = reverse("admin:audit_auditevent_changelist") + "?" + urlencode({"q": event.request_id})
        return format_html('<a href="{}">Every event of request {}</a>', url, event.request_id)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()  # one whole value: account names may hold spaces
        if not term:
            return queryset, False
        if PUBLIC_ID.fullmatch(term):  # an object's ID, and nothing else
            return queryset.filter(object_id=term), False
        condition = Q(object_id=term) | Q(request_id=term)
        accounts = list(Account.objects.filter(name__iexact=term).values_list("id", flat=True)[:SEARCH_MATCHES])
        users = list(User.objects.filter(username__iexact=term).values_list("id", flat=True)[:SEARCH_MATCHES])
        if accounts:
            condition |= Q(account_id__in=accounts)
        if users:
            condition |= Q(actor_user_id__in=users)
        return queryset.filter(condition), False


def object_link(object_type: str, object_id: str) -> str:
    """A link to the admin page of the object an audit event names (by its public ID or primary key)."""
    if not object_id:
        return "-"
    for prefix, changelist in PUBLIC_ID_CHANGELISTS.items():
        if object_id.startswith(prefix):
            url = reverse(f"admin:{changelist}_changelist") + "?" + urlencode({"q": object_id})
            return format_html('<a href="{}">{}</a>', url, object_id)
    page = PK_CHANGE_PAGES.get(object_type)
    if page and object_id.isascii() and object_id.isdigit():
        url = reverse(f"admin:{page}_change", args=[object_id])
        return format_html('<a href="{}">{} {}</a>', url, object_type, object_id)
    return object_id
