"""List filtering for /v1: the view's FilterSet, with its first problem as ``400 invalid_parameter``.

Also the JSON ``filter`` parameter as a django-filter filter: its text is parsed and compiled once, by
the form field, into a :class:`~elbia.api.json_filter.CompiledFilter`.
"""

import django_filters
from django import forms
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field

from elbia.api.exceptions import InvalidParameter
from elbia.api.json_filter import CompiledFilter, JsonFilter


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend, answering an invalid parameter with the contract's 400."""

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise InvalidParameter(filterset.first_error())
        return filterset.qs


class JsonFilterField(forms.Field):
    """Compiles the ``filter`` text; absent is ``None``, anything else (the empty text too) must compile."""

    def __init__(self, *, json_filter: JsonFilter, **kwargs):
        self.json_filter = json_filter
        super().__init__(**kwargs)

    def clean(self, value) -> CompiledFilter | None:
        if value is None:
            return None
        try:
            return self.json_filter.compile_document(value)
        except InvalidParameter as exc:
            raise forms.ValidationError(str(exc.detail)) from None


class JsonFilterFilter(django_filters.Filter):
    """``filter``: a JSON document over the fields ``json_filter`` declares (see elbia.api.json_filter)."""

    field_class = JsonFilterField

    def __init__(self, json_filter: JsonFilter, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(json_filter=json_filter, **kwargs)
        extend_schema_field({"type": "string", "description": kwargs.get("help_text", "")})(self)

    def filter(self, queryset, value: CompiledFilter | None):
        return queryset if value is None else queryset.filter(value.condition)
