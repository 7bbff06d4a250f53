"""Pieces every dashboard form shares: the one-time form id, ``key=value`` lines and lists of words.

The forms only turn what was typed into the values a service takes; the services validate those values
and their messages are shown next to the fields (``elbia.pages.add_service_errors``).
"""

import uuid

from django import forms
from django.core.exceptions import ValidationError

FORM_EXPIRED = "This form has expired. Please submit it again."


class OnceForm(forms.Form):
    """A form whose every rendering carries a one-time id: sending it twice (reload, double click) writes once.

    ``elbia.pages.write_once`` claims the id; templates render ``{{ form.fresh_form_id }}`` in a hidden input.
    """

    form_id = forms.UUIDField(
        widget=forms.HiddenInput, error_messages={"required": FORM_EXPIRED, "invalid": FORM_EXPIRED}
    )

    def fresh_form_id(self) -> str:
        """The id to render: the one submitted while it is valid (still unused), else a new one."""
        if self.is_bound and "form_id" not in self.errors:
            return str(self.cleaned_data["form_id"])
        return str(uuid.uuid4())

    def filled_fields(self) -> list[str]:
        """The fields given a value (what a create request sent), for the audit trail."""
        return [name for name, value in self.cleaned_data.items() if name != "form_id" and value not in ("", [], {})]

    def changed_fields(self) -> list[str]:
        """The fields whose value differs from the form's initial one (what an update changes)."""
        return [name for name in self.changed_data if name != "form_id"]


class ConfirmForm(OnceForm):
    """A dangerous action's form: done only with ``confirmed=yes``, which its confirmation page sends."""

    confirmed = forms.ChoiceField(
        choices=[("yes", "yes")],
        widget=forms.HiddenInput,
        error_messages={"required": "Confirm to go on.", "invalid_choice": "Confirm to go on."},
    )


class KeyValueField(forms.CharField):
    """``key=value`` lines (blank lines ignored) as a dict; the service validates the keys and values."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"})
    strip_values = True

    def __init__(self, *, what: str = "entry", **kwargs):
        self.what = what
        kwargs.setdefault("required", False)
        kwargs.setdefault("strip", False)
        super().__init__(**kwargs)

    def to_python(self, value) -> dict[str, str]:
        pairs: dict[str, str] = {}
        for number, line in enumerate(str(value or "").splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, item = line.partition("=")
            if not sep or not key.strip():
                raise ValidationError(f"Line {number}: write each {self.what} as key=value on a line of its own.")
            key = key.strip()
            if key in pairs:
                raise ValidationError(f"Line {number}: {key} is given twice.")
            pairs[key] = item.strip() if self.strip_values else item
        return pairs

    def prepare_value(self, value):
        if isinstance(value, dict):
            return "\n".join(f"{key}={item}" for key, item in value.items())
        return value


class SecretKeyValueField(KeyValueField):
    """``NAME=value`` lines whose values are secrets, kept exactly as typed after the ``=``; never rendered back,
    not even after a refused submission."""

    strip_values = False
    #: ``_field.html`` asks for the values again when a refused form comes back with them left out.
    secret = True

    def prepare_value(self, value):
        return ""


class WordListField(forms.CharField):
    """Words separated by commas or spaces, as a list in the order typed; the service validates each."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value) -> list[str]:
        return str(value or "").replace(",", " ").split()

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value
