"""Dashboard forms: sign-in (rate limited), sign-up and API token generation (list filters are the apps' FilterSets)."""

import uuid

from django import forms
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from elbia.accounts.models import User
from elbia.accounts.throttling import attempt_count, attempt_forgive, attempts_reset
from elbia.api.throttling import client_ip

TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Please wait a few minutes and try again."


class LoginForm(AuthenticationForm):
    """Django's sign-in form, with failed attempts limited per client IP and per username.

    Each attempt is counted before the password is checked (so parallel guesses cannot overtake the
    count) and taken back when it succeeds. A wrong username and a wrong password get the same message.
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Incorrect username or password.",
        "throttled": TOO_MANY_ATTEMPTS,
    }

    throttled = False

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is not None and self.cleaned_data.get("password"):
            window = settings.ELBIA_LOGIN_WINDOW
            counts = (
                attempt_count(bucket="login-ip", identity=client_ip(self.request), window=window),
                attempt_count(bucket="login-user", identity=username.casefold(), window=window),
            )
            if max(counts) > settings.ELBIA_LOGIN_ATTEMPTS:
                self.throttled = True
                raise ValidationError(self.error_messages["throttled"], code="throttled")
        cleaned = super().clean()
        if self.user_cache is not None:
            # Success: only failures count against the address, and the password's holder clears the username.
            attempt_forgive(bucket="login-ip", identity=client_ip(self.request))
            attempts_reset(bucket="login-user", identity=username.casefold())
        return cleaned


class SignupForm(forms.Form):
    """A new customer account and its first user."""

    account_name = forms.CharField(
        label="Company or project name",
        max_length=150,
        required=False,
        help_text="Shown on invoices. Defaults to your username.",
    )
    username = forms.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @/./+/-/_ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters, not a common password.",
    )
    password2 = forms.CharField(
        label="Confirm password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise ValidationError("This username is taken.", code="unique")
        return username

    def clean(self):
        cleaned = super().clean()
        password1, password2 = cleaned.get("password1"), cleaned.get("password2")
        if password1 and password2 and password1 != password2:
            self.add_error("password2", "The two passwords do not match.")
        elif password1:
            candidate = User(username=cleaned.get("username", ""), email=cleaned.get("email", ""))
            try:
                password_validation.validate_password(password1, candidate)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return cleaned


class TokenCreateForm(forms.Form):
    """Name a new API token and choose its scopes (one checkbox per scope)."""

    name = forms.CharField(
        max_length=100,
        help_text="What uses this token, e.g. “CI deploys” or “laptop”.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. CI deploys", "autocomplete": "off"}),
    )
    scopes = forms.MultipleChoiceField(
        choices=[(name, name) for name in settings.SCOPES],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one scope."},
    )
    # A one-time id per rendered form: submitting the same form twice issues one token, not two.
    form_id = forms.UUIDField(
        widget=forms.HiddenInput,
        error_messages={
            "required": "This form has expired. Please submit it again.",
            "invalid": "This form has expired. Please submit it again.",
        },
    )

    def fresh_form_id(self) -> str:
        """The id to render: the one submitted while it is valid (still unused), else a new one."""
        if self.is_bound and "form_id" not in self.errors:
            return str(self.cleaned_data["form_id"])
        return str(uuid.uuid4())

    def scope_options(self) -> list[dict]:
        """Each scope with its one-line explanation and whether it is ticked, for the template."""
        chosen = set(self.data.getlist("scopes")) if self.is_bound else set()
        return [
            {"name": name, "description": description, "checked": name in chosen}
            for name, description in settings.SCOPES.items()
        ]
