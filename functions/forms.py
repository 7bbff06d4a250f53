"""Dashboard forms for functions: they turn what was typed into the values ``functions.services`` takes.

The services check every value and their messages are shown next to the fields. Environment values
are write-only: a form never renders one back, not even after a refused submission.
"""

import json

from django import forms
from django.core.exceptions import ValidationError

from elbia.forms import OnceForm, SecretKeyValueField, WordListField
from functions.code import MAX_ZIPPED_BYTES
from functions.runtime.environments import MAX_EVENT_BYTES
from functions.runtimes import CURRENT_RUNTIMES, RUNTIMES
from functions.validators import MEMORY_MB, TIMEOUT_S
from resources.forms import DEFAULT_REGION, region_choices

DEFAULT_RUNTIME = "Python 3.12"
TAGS_HELP = "Separated by commas or spaces, e.g. auth, edge."
ENVIRONMENT_HELP = "One NAME=value per line. Values are stored encrypted and never shown again."


def _handler_formats() -> str:
    """Each handler format with the runtimes using it and an example, for the handler's help text."""
    formats: dict[tuple[str, str], list[str]] = {}
    for name in CURRENT_RUNTIMES:
        runtime = RUNTIMES[name]
        formats.setdefault((runtime.handler_format, runtime.handler_example), []).append(name)
    return "; ".join(f"{', '.join(names)}: {fmt} ({example})" for (fmt, example), names in formats.items())


def _number(label: str, bounds: tuple[int, int], initial: int, unit: str) -> forms.IntegerField:
    low, high = bounds
    return forms.IntegerField(
        label=label,
        initial=initial,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text=f"{low} to {high} {unit}.",
    )


class FunctionConfigurationForm(OnceForm):
    """What a function runs with: handler, memory, timeout and tags (shared by creating and editing)."""

    handler = forms.CharField(required=False, help_text=f"The entry point. {_handler_formats()}.")
    memory_mb = _number("Memory (MB)", MEMORY_MB, 128, "MB")
    timeout_s = _number("Timeout (seconds)", TIMEOUT_S, 3, "seconds")
    tags = WordListField(help_text=TAGS_HELP)


class FunctionCreateForm(FunctionConfigurationForm):
    """A new function: its name, runtime and region, then its configuration and environment."""

    name = forms.CharField(required=False, help_text="Lowercase letters, digits and hyphens, e.g. user-authentication.")
    runtime = forms.CharField(
        initial=DEFAULT_RUNTIME, widget=forms.Select(choices=[(name, name) for name in CURRENT_RUNTIMES])
    )
    region = forms.CharField(initial=DEFAULT_REGION, widget=forms.Select(choices=region_choices()))
    environment = SecretKeyValueField(label="Environment variables", what="variable", help_text=ENVIRONMENT_HELP)

    field_order = ["name", "runtime", "handler", "memory_mb", "timeout_s", "region", "tags", "environment"]


class FunctionEditForm(FunctionConfigurationForm):
    """Change a function's configuration (it redeploys) or its tags; set or remove environment variables."""

    environment = SecretKeyValueField(
        label="Set environment variables",
        what="variable",
        help_text="One NAME=value per line: a new variable, or a new value for an existing one. "
        "Values are stored encrypted and never shown again.",
    )
    remove_environment = forms.MultipleChoiceField(
        label="Remove environment variables", required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, variables=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["remove_environment"].choices = [(name, name) for name in sorted(variables)]
        if not variables:
            del self.fields["remove_environment"]

    def clean(self):
        cleaned = super().clean()
        both = set(cleaned.get("environment") or {}) & set(cleaned.get("remove_environment") or [])
        if both:
            raise ValidationError({"remove_environment": f"Set or remove {', '.join(sorted(both))}, not both."})
        return cleaned

    def environment_patch(self) -> dict[str, str | None]:
        """The environment as ``function_update`` takes it: values to set, ``None`` for those to remove."""
        removed = self.cleaned_data.get("remove_environment") or []
        return {**self.cleaned_data["environment"], **dict.fromkeys(removed)}


class FunctionCodeForm(OnceForm):
    """A new ZIP archive for a function (``function_update_code`` checks it; its messages show under ``code``)."""

    code = forms.FileField(
        label="ZIP archive",
        help_text="At most 50 MB. It must hold the handler's file; the function deploys it at once.",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
        error_messages={"required": "Choose a ZIP archive to upload.", "empty": "The chosen file is empty."},
    )

    def clean_code(self):
        upload = self.cleaned_data["code"]
        if upload.size > MAX_ZIPPED_BYTES:
            raise ValidationError(f"The archive is {upload.size:,} bytes; at most {MAX_ZIPPED_BYTES:,} are allowed.")
        return upload


class InvokeForm(OnceForm):
    """The function page's Test panel: an event (any JSON, at most 6 MB) to invoke the function with."""

    event = forms.CharField(
        label="Event (JSON)",
        strip=False,
        max_length=MAX_EVENT_BYTES,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
        help_text="Any JSON value: an object, an array, a string, a number, true, false or null.",
    )

    def clean_event(self) -> bytes:
        text = self.cleaned_data["event"]
        try:
            json.loads(text)
        except ValueError as error:
            raise ValidationError(f"Not valid JSON: {error}.") from None
        return text.encode()
