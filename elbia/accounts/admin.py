"""Staff views of accounts, their users and API tokens; OAuth's own token tables stay out of the admin.

Accounts and users are created by sign-up and ``create_account`` (``--staff`` for staff), never here.
An account's page links to everything it owns. Tokens show no secret (Elbia stores only their hashes)
and are revoked through ``token_revoke``; staff may change a token's own rate limit.

django-oauth-toolkit registers admins for its access tokens, refresh tokens, grants, ID tokens and
applications. They are unregistered: the tokens are reachable (masked, as hashes) through the API
tokens they belong to, revoking one must revoke its whole family (``token_revoke``), and Elbia issues
no grants or ID tokens. Applications stay visible, read-only: editing the built-in CLI client would
break every token renewal.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.template.defaultfilters import date as format_date
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from oauth2_provider.models import AccessToken, Application, Grant, IDToken, RefreshToken

from elbia.accounts.forms import AdminLoginForm
from elbia.accounts.models import Account, ApiToken, Invitation, Membership, TokenEnd, User
from elbia.accounts.services import (
    account_rename,
    token_revoke,
    token_set_rate_limit,
    user_set_active,
    validate_rate_limit,
)
from elbia.admin import AccountFilter, ElbiaModelAdmin, ReadOnlyAdmin, changelist_url, link, links, service_action
from elbia.audit.models import AuditEvent

#: How many of an account's latest audit events its page shows.
RECENT_EVENTS = 10
#: How many of an account's latest invitations its page shows.
RECENT_INVITATIONS = 20

for model in (AccessToken, RefreshToken, Grant, IDToken, Application):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
if admin.site.is_registered(Group):
    admin.site.unregister(Group)

# The admin's sign-in has the dashboard's limits per address and per username, and audits failures.
admin.site.login_form = AdminLoginForm


# --- Accounts ------------------------------------------------------------------------------------------


@admin.register(Account)
class AccountAdmin(ElbiaModelAdmin):
    list_display = ["name", "id", "created_at"]
    list_filter = [("created_at", admin.DateFieldListFilter)]
    search_fields = ["name"]
    search_help_text = "An account id; part of an account's name; a member's exact username or email (any role)."
    exact_search = ((r"\d{1,18}", "pk"),)
    fields = ["name", "id", "created_at", "members", "invitations", "related", "recent_events"]
    readonly_fields = ["id", "created_at", "members", "invitations", "related", "recent_events"]

    def account_of(self, account: Account) -> Account:
        return account

    def get_search_results(self, request, queryset, search_term):
        """Django's search, or the account of a member named exactly (no join, no DISTINCT over accounts)."""
        found, duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return found, duplicates
        members = Membership.objects.filter(Q(user__username__iexact=term) | Q(user__email__iexact=term))
        members = members.values("account_id")
        return found | queryset.filter(pk__in=members), duplicates

    def has_add_permission(self, request) -> bool:
        return False  # sign-up and create_account make an account together with its first user

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting would drop resources without tearing them down, and invoices are kept

    def save_model(self, request, obj, form, change) -> None:
        account_rename(account=obj, name=form.cleaned_data["name"])

    @admin.display(description="owns")
    def related(self, account: Account) -> str:
        return links(
            (label, changelist_url(model, account=account.pk))
            for label, model in (
                ("Users", "accounts.user"),
                ("API tokens", "accounts.apitoken"),
                ("Resources", "resources.resource"),
                ("Functions", "functions.function"),
                ("Invoices", "billing.invoice"),
                ("Usage events", "billing.usageevent"),
                ("Audit events", "audit.auditevent"),
            )
        )

    @admin.display(description="members")
    def members(self, account: Account) -> str:
        """Read-only: roles change in the dashboard, by the account's owners (``membership_set_role`` keeps the
        last owner and narrows tokens)."""
        memberships = Membership.objects.filter(account=account).select_related("user").order_by("created_at", "id")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (link(m.user), m.user.email, m.get_role_display(), format_date(m.created_at, "Y-m-d"))
                for m in memberships
            ),
        )
        if not rows:
            return "None."
        return format_html("<table><tr><th>user</th><th>email</th><th>role</th><th>since</th></tr>{}</table>", rows)

    @admin.display(description=f"latest {RECENT_INVITATIONS} invitations")
    def invitations(self, account: Account) -> str:
        invitations = Invitation.objects.for_account(account).select_related("invited_by", "accepted_by")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    invitation.email,
                    invitation.get_role_display(),
                    invitation.status,
                    invitation.invited_by or "-",
                    format_date(invitation.created_at, "Y-m-d H:i"),
                    invitation.accepted_by or "-",
                )
                for invitation in invitations[:RECENT_INVITATIONS]
            ),
        )
        if not rows:
            return "None."
        return format_html(
            "<table><tr><th>email</th><th>role</th><th>status</th><th>invited by</th><th>sent</th>"
            "<th>accepted by</th></tr>{}</table>",
            rows,
        )

    @admin.display(description=f"latest {RECENT_EVENTS} audit events")
    def recent_events(self, account: Account) -> str:
        events = AuditEvent.objects.for_account(account).order_by("-created_at", "-id")[:RECENT_EVENTS]
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:audit_auditevent_change", args=[event.pk]),
                    format_date(event.created_at, "Y-m-d H:i:s"),
                    event.action,
                    event.object_id or "-",
                    event.actor,
                )
                for event in events
            ),
        )
        if not rows:
            return "None yet."
        return format_html("<table><tr><th>when</th><th>action</th><th>object</th><th>by</th></tr>{}</table>", rows)


# --- Users ----------------------------------------------------------------------------------------------


@admin.register(User)
class UserAdmin(ElbiaModelAdmin, auth_admin.UserAdmin):
    list_display = ["username", "email", "account_link", "is_staff", "is_active", "last_login", "date_joined"]
    list_select_related = ["account"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups", AccountFilter]
    search_fields = ["username", "email", "first_name", "last_name"]
    search_help_text = "An email address (exact); part of a username, name, email or account name."
    exact_search = ((r"[^@\s]+@[^@\s]+", "email__iexact"),)
    search_account_names = True
    ordering = ["-id"]
    fieldsets = (
        (None, {"fields": ("username", "password", "account_link")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ["account_link", "last_login", "date_joined"]
    private_fields = ("password",)

    @admin.display(description="account", ordering="account__name")
    def account_link(self, user: User) -> str:
        return link(user.account)

    def save_model(self, request, obj, form, change) -> None:
        """Deactivating goes through ``user_set_active``: the user's tokens are revoked with it."""
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data:
            user_set_active(user=obj, active=obj.is_active, request=request)

    def has_add_permission(self, request) -> bool:
        return False  # customers sign up; staff are made with `create_account --staff`

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deactivate instead (is_active): the user's tokens stop working at once


@admin.register(Group)
class GroupAdmin(ElbiaModelAdmin, auth_admin.GroupAdmin):
    """Django's group admin, with its changes in the audit trail (staff groups: support, operator)."""


@admin.register(Application)
class ApplicationAdmin(ReadOnlyAdmin):
    list_display = ["name", "client_id", "client_type", "authorization_grant_type"]
    fields = ["name", "client_id", "client_type", "authorization_grant_type", "created"]


# --- API tokens -----------------------------------------------------------------------------------------


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["rate_limit"]

    def clean_rate_limit(self) -> str:
        value = self.cleaned_data["rate_limit"].strip()
        try:
            validate_rate_limit(value)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["rate_limit"]) from None
        return value


class TokenStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "active"), ("expired", "expired"), ("revoked", "revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        conditions = {
            "active": Q(revoked_at__isnull=True, expires_at__gt=now),
            "expired": Q(revoked_at__isnull=True, expires_at__lte=now),
            "revoked": Q(revoked_at__isnull=False),
        }
        return queryset.filter(conditions[self.value()]) if self.value() in conditions else queryset


@admin.register(ApiToken)
class ApiTokenAdmin(ElbiaModelAdmin):
    """Staff read everything about a token but its secrets (never stored), set its rate limit, revoke it."""

    form = ApiTokenForm
    list_display = ["name", "account_link", "user_link", "scopes", "status", "rate_limit", "expires_at", "last_used_at"]
    list_select_related = ["account", "user"]
    list_filter = [TokenStatusFilter, ("created_at", admin.DateFieldListFilter), AccountFilter]
    search_fields = ["name", "user__username", "user__email"]
    search_help_text = (
        "A token's number (exact); part of its name, of its user's username or email, or of an account's name."
    )
    exact_search = ((r"\d{1,18}", "pk"),)
    search_account_names = True
    private_fields = ("token_family",)
    ordering = ["-id"]
    fields = [
        "name",
        "account_link",
        "user_link",
        "scopes",
        "status",
        "rate_limit",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = [
        "name",
        "account_link",
        "user_link",
        "scopes",
        "status",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    @admin.display(description="account", ordering="account__name")
    def account_link(self, token: ApiToken) -> str:
        return link(token.account)

    @admin.display(description="user", ordering="user__username")
    def user_link(self, token: ApiToken) -> str:
        return link(token.user, token.user.username)

    def has_add_permission(self, request) -> bool:
        return False  # tokens are issued by token_issue (dashboard, issue_token), the only time their secret exists

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: that also stops the OAuth tokens of its family

    def save_model(self, request, obj, form, change) -> None:
        token_set_rate_limit(api_token=obj, rate_limit=form.cleaned_data["rate_limit"])

    @admin.display(description="status")
    def status(self, token: ApiToken) -> str:
        return token.status_detail

    @service_action(
        description="Revoke the selected API tokens",
        verb="revoke",
        confirm="Requests made with these tokens will be refused at once, and they can no longer be renewed. "
        "This cannot be undone: their owners will have to generate new tokens.",
        audit=False,
    )
    def revoke(self, request, token: ApiToken) -> bool:
        return token_revoke(api_token=token, reason=TokenEnd.BY_STAFF, request=request)
