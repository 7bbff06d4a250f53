"""Dashboard forms: sign-in (rate limited), sign-up and API token generation (list filters are the apps' FilterSets)."""

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError

from elbia.accounts.models import Account, User
from elbia.accounts.roles import ROLE_DESCRIPTIONS, Role
from elbia.accounts.selectors import TEAM_ACTIONS
from elbia.accounts.services import sign_in_address_record
from elbia.accounts.throttling import sign_in_allowed, sign_in_succeeded
from elbia.api.throttling import client_ip
from elbia.audit.services import audit_record
from elbia.forms import OnceForm

TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Please wait a few minutes and try again."


class ThrottledSignInMixin:
    """Sign-in limited per client address and per username (elbia.accounts.throttling), failures audited.

    Each attempt is counted before the password is checked (so parallel guesses cannot overtake the
    count) and taken back when it succeeds. A wrong username and a wrong password get the same message.
    Over a limit, ``throttled`` is set: the view answers 429 with Retry-After.
    """

    throttled = False

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()
        address = client_ip(self.request)
        if not sign_in_allowed(address=address, username=username):
            self.throttled = True
            raise ValidationError(TOO_MANY_ATTEMPTS, code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            self._audit_failure(username)
            raise
        sign_in_succeeded(address=address, username=username)
        sign_in_address_record(user=self.user_cache, address=address)
        return cleaned

    def _audit_failure(self, username: str) -> None:
        account_id = User.objects.filter(username=username).values_list("account_id", flat=True).first()
        audit_record(
            action="user.login_failed",
            request=self.request,
            account=None if account_id is None else Account(pk=account_id),
            object_id=username,
        )


class LoginForm(ThrottledSignInMixin, AuthenticationForm):
    """The dashboard's sign-in form."""

    error_messages = {**AuthenticationForm.error_messages, "invalid_login": "Incorrect username or password."}


class AdminLoginForm(ThrottledSignInMixin, AdminAuthenticationForm):
    """The admin's sign-in form (staff only), with the dashboard's limits."""


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


class TokenCreateForm(OnceForm):
    """Name a new API token and choose its scopes (one checkbox per scope); submitting it twice issues one token."""

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

    def __init__(self, *args, allowed: list[str] | None = None, **kwargs):
        """``allowed``: the scopes the member's role allows (the only ones offered); all of them by default."""
        super().__init__(*args, **kwargs)
        self.allowed = list(settings.SCOPES) if allowed is None else allowed
        self.fields["scopes"].choices = [(name, name) for name in self.allowed]

    def scope_options(self) -> list[dict]:
        """Each scope the role allows with its one-line explanation and whether it is ticked, for the template."""
        chosen = set(self.data.getlist("scopes")) if self.is_bound else set()
        return [
            {"name": name, "description": settings.SCOPES[name], "checked": name in chosen} for name in self.allowed
        ]


class InviteForm(OnceForm):
    """Invite someone by email with a role (owners, Account Settings > Members)."""

    email = forms.EmailField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    role = forms.ChoiceField(
        choices=Role.choices,
        initial=Role.DEVELOPER,
        widget=forms.RadioSelect,
        help_text=" ".join(f"{role.label}: {ROLE_DESCRIPTIONS[role]}" for role in Role),
    )


class InvitationSignupForm(SignupForm):
    """Accepting an invitation as a newcomer: a username and a password (the address is the invited one)."""

    account_name = None
    email = None


class ActivityFilterForm(forms.Form):
    """The Activity page's filters: one member (who acted), one kind of action; empty means all."""

    member = forms.TypedChoiceField(label="By member", coerce=int, required=False, empty_value=None)
    action = forms.ChoiceField(label="Action", required=False)

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [("", "All members")] + [(m.user_id, m.user.username) for m in members]
        self.fields["action"].choices = [("", "All actions"), *TEAM_ACTIONS.items()]
