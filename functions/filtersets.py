"""The filters of the function lists (``GET /v1/functions`` and the dashboard's Functions page).

Each filterable field is declared here once: the API reads it, the OpenAPI document describes it and the
dashboard renders it. Deleted functions are listed only when ``status`` asks for them.
"""

import django_filters
from django.db.models import Exists, OuterRef

from elbia.filtersets import ListFilterSet, OrderingFilter, PatternFilter, value_choices
from functions.models import Function, FunctionStatus, FunctionTag, Invocation, InvocationStatus
from functions.runtimes import RUNTIME_NAMES, runtime_name
from functions.validators import MAX_TAG_LENGTH, TAG
from resources.catalog import REGIONS
from resources.selectors import DEFAULT_ORDERING, ORDERINGS


class FunctionFilterSet(ListFilterSet):
    """Functions by status, runtime, region and tag, and ``ordering``."""

    hidden_status = FunctionStatus.DELETED

    status = django_filters.ChoiceFilter(
        choices=value_choices(FunctionStatus.values),
        empty_label="All live statuses",
        help_text="Only functions in this status. Deleted functions are listed only when asked for.",
    )
    runtime = django_filters.ChoiceFilter(
        choices=value_choices(RUNTIME_NAMES),
        empty_label="All runtimes",
        method="filter_runtime",
        help_text='Only functions on this runtime, by name or identifier: "Node.js 20" or "nodejs20.x" '
        "(see GET /v1/runtimes).",
    )
    region = django_filters.ChoiceFilter(
        choices=value_choices(REGIONS), empty_label="All regions", help_text="Only functions in this region code."
    )
    tag = PatternFilter(
        TAG.pattern,
        message=f"Parameter 'tag' must be a tag: 1-{MAX_TAG_LENGTH} letters, digits or _ . : / = + @ -, "
        "starting with a letter or digit.",
        method="filter_tag",
        help_text="Only functions that have this tag among theirs (a function group identifier).",
    )
    ordering = OrderingFilter(ORDERINGS, default=DEFAULT_ORDERING)

    class Meta:
        model = Function
        fields = ["status", "runtime", "region", "tag", "ordering"]

    def filter_runtime(self, queryset, name, value):
        return queryset.filter(runtime=runtime_name(value)) if value else queryset

    def filter_tag(self, queryset, name, value):
        """A semi-join (EXISTS) on the (account, tag, function) index, so no function is listed twice."""
        if not value:
            return queryset
        tagged = FunctionTag.objects.filter(account=OuterRef("account_id"), tag=value, function=OuterRef("pk"))
        return queryset.filter(Exists(tagged))


class InvocationFilterSet(ListFilterSet):
    """A function's invocations by status, newest first by default."""

    status = django_filters.ChoiceFilter(
        choices=value_choices(InvocationStatus.values),
        empty_label="All statuses",
        help_text="Only invocations in this status.",
    )
    ordering = OrderingFilter(ORDERINGS, default=DEFAULT_ORDERING)

    class Meta:
        model = Invocation
        fields = ["status", "ordering"]
