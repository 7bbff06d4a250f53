"""The base of every list's FilterSet (django-filter): a filterable field is declared once, in its app's FilterSet.

The API reads it (``elbia.api.filtering.FilterBackend`` turns an invalid value into ``400 invalid_parameter``),
drf-spectacular documents it (parameters, enums and ``help_text``), and the dashboard renders its form
(every field but ``api_only`` ones). A field's error messages are sentences naming the parameter, so both
surfaces can show them as they are.
"""

from collections.abc import Iterable

import django_filters
from django import forms
from django.core.validators import RegexValidator
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field


def value_choices(values: Iterable[str]) -> list[tuple[str, str]]:
    """Choices shown and sent as their values (``pending``, ``us-east-1``), as the API writes them."""
    return [(value, value) for value in values]


class PatternFilter(django_filters.CharFilter):
    """A text parameter that must match ``pattern`` whole (else ``message``); the schema states the pattern."""

    def __init__(self, pattern: str, *, message: str, **kwargs):
        super().__init__(validators=[RegexValidator(rf"\A(?:{pattern})\Z", message)], **kwargs)
        schema = {"type": "string", "pattern": f"^{pattern}$", "description": kwargs.get("help_text", "")}
        extend_schema_field(schema)(self)


class OrderingFilter(django_filters.ChoiceFilter):
    """``ordering``: one of the declared orderings (each ends with the id, so ties have a stable order)."""

    def __init__(self, orderings: dict[str, tuple[str, ...]], *, default: str, **kwargs):
        self.orderings, self.default = orderings, default
        kwargs.setdefault(
            "help_text",
            f"{' or '.join(sorted(orderings, key=lambda name: name.lstrip('-')))} (default {default}); "
            "ties are broken by id.",
        )
        super().__init__(choices=value_choices(orderings), **kwargs)

    def filter(self, queryset: QuerySet, value) -> QuerySet:
        return queryset.order_by(*self.orderings[value or self.default])


class ListFilterSet(django_filters.FilterSet):
    """Filters of one list. Subclasses declare filters (and usually ``ordering = OrderingFilter(...)``).

    ``hidden_status``: a status listed only when a filter asks for it by name (``deleted``); a filter
    whose cleaned value has a ``fields`` set (the compiled JSON ``filter``) asks when it names ``status``.
    """

    hidden_status: str | None = None
    #: Parameters for API clients only: the dashboard does not render them.
    api_only: tuple[str, ...] = ("filter", "ordering")

    def __init__(self, data=None, *args, blank_is_all: bool = False, **kwargs):
        """``blank_is_all``: a parameter sent empty means "any" (a dashboard form's "All ..." option); else
        it is invalid, as for API clients, for whom an empty value is a mistake rather than a choice."""
        super().__init__(data, *args, **kwargs)
        self.blank_is_all = blank_is_all
        for name, field in self.form.fields.items():
            if isinstance(field, forms.ChoiceField):
                values = ", ".join(str(value) for value, _ in field.choices if value != "")
                field.error_messages["invalid_choice"] = f"Parameter '{name}' must be one of: {values}."

    def is_valid(self) -> bool:
        valid = super().is_valid()
        if not self.blank_is_all:
            for name, field in self.form.fields.items():
                if self.data.get(name) == "" and name not in self.form.errors:
                    self.form.add_error(name, self._blank_error(name, field))
        return valid and not self.form.errors

    @staticmethod
    def _blank_error(name: str, field: forms.Field) -> str:
        if isinstance(field, forms.ChoiceField):
            return field.error_messages["invalid_choice"]
        return next((validator.message for validator in field.validators), f"Parameter '{name}' must not be empty.")

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        if self.hidden_status and not self.names_status():
            queryset = queryset.exclude(status=self.hidden_status)
        return queryset

    def names_status(self) -> bool:
        data = self.form.cleaned_data
        return bool(data.get("status")) or any("status" in getattr(value, "fields", ()) for value in data.values())

    def page_fields(self) -> Iterable[forms.BoundField]:
        """The form's fields a dashboard page shows."""
        return [field for field in self.form if field.name not in self.api_only]

    def first_error(self) -> str:
        """The first problem, as a sentence naming the parameter (the form must have been validated)."""
        return next(iter(self.errors.values()))[0]
