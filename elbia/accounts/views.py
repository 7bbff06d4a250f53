"""The customer dashboard's own pages: sign-in, sign-up, the overview and Account Settings > API Tokens.

Each app's pages live in that app (``resources/views.py``, ``functions/views.py``, ``billing/views.py``);
the overview here reads every app's selectors, as the ground floor's one page allowed to.

Every page but sign-in and sign-up requires a signed-in user of a customer account
and shows only that account's objects (staff users without an account get a 403
page pointing to the admin). Pages are never cached: they show account data.
"""

from contextlib import suppress

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from billing.periods import current_month
from billing.selectors import PriceMissing, usage_for_month
from elbia.accounts.forms import (
    ActivityFilterForm,
    InvitationSignupForm,
    InviteForm,
    LoginForm,
    SignupForm,
    TokenCreateForm,
)
from elbia.accounts.models import Invitation, Membership, TokenEnd
from elbia.accounts.roles import ROLE_DESCRIPTIONS, TOKENS_MANAGE, Role, role_allows, role_scopes
from elbia.accounts.selectors import TEAM_ACTIONS, api_token_list, member_list, pending_invitations, team_events
from elbia.accounts.services import (
    LAST_OWNER,
    account_create,
    email_verification_send,
    email_verify,
    invitation_accept,
    invitation_cancel,
    invitation_create,
    invitation_from_token,
    invitation_sign_up,
    mail_user,
    membership_remove,
    membership_set_role,
    token_issue,
    token_revoke,
)
from elbia.accounts.throttling import attempt_count
from elbia.api.throttling import client_ip
from elbia.audit.services import audit_record
from elbia.errors import DomainError
from elbia.forms import ConfirmForm, OnceForm
from elbia.lifecycle import count_live
from elbia.pages import (
    SESSION_ACCOUNT,
    action_post,
    add_service_errors,
    dashboard_page,
    form_claim,
    form_page,
    form_release,
    paginate,
)
from functions.selectors import function_list
from resources.selectors import resource_list

SIGNUP_WINDOW = 3600
# How many of the newest resources and functions the overview links to.
RECENT = 5
# The request a new token's "Try it" command makes: the first that one of its scopes allows.
TRY_PATHS = {"resources:read": "/v1/resources", "functions:read": "/v1/functions", "billing:read": "/v1/usage"}


# --- Signing in and out, signing up ----------------------------------------------


def _refuse_if_throttled(response, form):
    """A sign-in page whose form hit a limit answers 429 with Retry-After."""
    if getattr(form, "throttled", False):
        response.status_code = 429
        response["Retry-After"] = str(int(settings.ELBIA_LOGIN_WINDOW))
    return response


class LoginView(auth_views.LoginView):
    """Sign in; attempts are limited per client IP and per username (see elbia.accounts.throttling)."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def form_invalid(self, form):
        return _refuse_if_throttled(super().form_invalid(form), form)


def admin_login(request, extra_context=None):
    """The admin's sign-in page (``admin.site.login``, whose form has the dashboard's limits), 429 when limited."""
    response = admin.site.login(request, extra_context)
    form = (getattr(response, "context_data", None) or {}).get("form")
    return _refuse_if_throttled(response, form)


class LogoutView(auth_views.LogoutView):
    """Sign out (POST only, as Django requires) and say so on the sign-in page."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You have signed out.")
        return response


@sensitive_post_parameters("password1", "password2")
@never_cache
@require_http_methods(["GET", "POST"])
def signup(request):
    """Create a customer account with its first user, then sign that user in."""
    if request.user.is_authenticated:
        return redirect(settings.LOGIN_REDIRECT_URL)
    form = SignupForm(request.POST or None)
    status = 200
    # Every submission counts, valid or not: whether a username is taken can only be asked this often.
    if request.method == "POST" and (
        attempt_count(bucket="signup-ip", identity=client_ip(request), window=SIGNUP_WINDOW)
        > settings.ELBIA_SIGNUP_ATTEMPTS
    ):
        # Not validated (that would say whether the username is taken): the form comes back as it was sent.
        form = SignupForm(initial={name: request.POST.get(name, "") for name in ("account_name", "username", "email")})
        messages.error(request, "Too many sign-up attempts from your network. Please try again later.")
        status = 429
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = account_create(
                username=data["username"],
                email=data["email"],
                password=data["password1"],
                account_name=data["account_name"],
            )
        except ValidationError as exc:
            add_service_errors(form, exc)
        except IntegrityError:  # the same username was taken a moment ago
            form.add_error("username", "This username is taken.")
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            audit_record(
                action="account.create",
                request=request,
                account=user.account,
                obj=user.account,
                changed_fields=["name", "username", "email", "password"],
            )
            email_verification_send(user=user, request=request)
            messages.success(
                request,
                f"Welcome to Elbia Lambda, {user.username}. Your account is ready. We sent a link to "
                f"{user.email}: open it to confirm the address before we send anything else there.",
            )
            return redirect(settings.LOGIN_REDIRECT_URL)
    return render(request, "registration/signup.html", {"form": form}, status=status)


# --- Overview pages ---------------------------------------------------------------


@dashboard_page
def home(request):
    """What the account runs, at a glance (its newest resources and functions linked), and how to reach the API."""
    resources = count_live(resource_list(account=request.account))
    functions = count_live(function_list(account=request.account))
    usable = Q(revoked_at__isnull=True, expires_at__gt=timezone.now())
    tokens = api_token_list(account=request.account, user=request.user).aggregate(
        total=Count("id"), active=Count("id", filter=usable)
    )
    month, usage = current_month(), None
    if role_allows(request.role, "billing:read"):  # the usage summary is for roles that see billing
        with suppress(PriceMissing):
            usage = usage_for_month(account=request.account, month=month)
    live_resources = resource_list(account=request.account).exclude(status="deleted").select_related("function")
    context = {
        "section": "home",
        "resources": resources,
        "functions": functions,
        "recent_resources": live_resources.order_by("-created_at", "-id")[:RECENT],
        "recent_functions": function_list(account=request.account)
        .exclude(status="deleted")
        .order_by("-created_at", "-id")[:RECENT],
        "tokens": tokens,
        "month": month,
        "usage": usage,
        "base_url": request.build_absolute_uri("/").rstrip("/"),
    }
    return render(request, "accounts/home.html", context)


# --- Account Settings ---------------------------------------------------------------


@dashboard_page
def account_settings(request):
    """Account Settings: who is signed in, for which account."""
    return render(request, "accounts/settings.html", {"section": "settings", "tab": "profile"})


def _visible_tokens(request):
    """The tokens a member sees and may revoke: every token of the account for owners, else their own."""
    everyone = role_allows(request.role, TOKENS_MANAGE)
    return api_token_list(account=request.account, user=None if everyone else request.user)


@dashboard_page
def tokens(request):
    """Account Settings > API Tokens: the user's tokens, never their secrets."""
    everyone = role_allows(request.role, TOKENS_MANAGE)
    context = {
        "section": "settings",
        "tab": "tokens",
        "token_days": settings.ELBIA_TOKEN_DAYS,
        "everyone": everyone,
        "page": paginate(request, _visible_tokens(request)),
    }
    return render(request, "accounts/tokens.html", context)


@dashboard_page
@require_http_methods(["GET", "POST"])
def token_create(request):
    """Generate New Token; the answer to the POST is the only place its secrets ever appear."""
    context = {"section": "settings", "tab": "tokens", "token_days": settings.ELBIA_TOKEN_DAYS}
    if request.method == "GET":
        context["form"] = TokenCreateForm(allowed=role_scopes(request.role))
        return render(request, "accounts/token_new.html", context)

    form = TokenCreateForm(request.POST, allowed=role_scopes(request.role))
    context["form"] = form
    if not form.is_valid():
        return render(request, "accounts/token_new.html", context, status=400)
    if not form_claim(request, form):
        messages.warning(
            request,
            "That form was already submitted and its token generated; a token's secret is shown only once. "
            "Generate a new token if you need another.",
        )
        return redirect("dashboard:tokens")
    try:
        issued = token_issue(
            user=request.user,
            account=request.account,
            scopes=form.cleaned_data["scopes"],
            name=form.cleaned_data["name"],
        )
    except ValidationError as exc:
        form_release(request, form)
        add_service_errors(form, exc)
        return render(request, "accounts/token_new.html", context, status=400)
    audit_record(action="apitoken.create", request=request, obj=issued.api_token, changed_fields=["name", "scopes"])
    mail_user(
        user=request.user,
        subject="A new Elbia API token was generated",
        message=f"The API token “{issued.api_token.name}” ({', '.join(issued.scopes)}) was generated for your "
        "account. If this was not you, revoke it in Account Settings > API Tokens and change your password.",
    )
    context.update(
        issued=issued,
        base_url=request.build_absolute_uri("/").rstrip("/"),
        try_path=next((path for scope, path in TRY_PATHS.items() if scope in issued.scopes), "/v1/resources"),
    )
    return render(request, "accounts/token_created.html", context, status=201)


@dashboard_page
@require_http_methods(["GET", "POST"])
def token_revoke_view(request, pk: int):
    """Revoke a token after confirmation (a dialog with JavaScript, this page without); effective at once."""
    api_token = get_object_or_404(_visible_tokens(request), pk=pk)
    if request.method == "POST" and request.POST.get("confirmed") == "yes":
        reason = TokenEnd.BY_USER if api_token.user_id == request.user.pk else TokenEnd.BY_OWNER
        if token_revoke(api_token=api_token, reason=reason, request=request):
            messages.success(request, f"The token “{api_token.name}” is revoked. Requests using it are now refused.")
        else:
            messages.info(request, f"The token “{api_token.name}” was already revoked.")
        return redirect("dashboard:tokens")
    context = {"section": "settings", "tab": "tokens", "api_token": api_token}
    return render(request, "accounts/token_revoke.html", context)


@dashboard_page
@require_POST
def switch_account(request):
    """The header's account switcher: the dashboard acts on the chosen account (one the user is a member of)."""
    chosen = next((m for m in request.memberships if str(m.account_id) == request.POST.get("account")), None)
    if chosen is None:
        messages.error(request, "You are not a member of that account.")
    else:
        request.session[SESSION_ACCOUNT] = chosen.account_id
        messages.success(
            request, f"You are now working in {chosen.account.name} ({chosen.get_role_display().lower()})."
        )
    return redirect("dashboard:home")


# --- Email verification -------------------------------------------------------------


@never_cache
@require_http_methods(["GET"])
def verify_email(request, token: str):
    """The link mailed at sign-up: confirms that the user's address reaches them."""
    user = email_verify(token=token)
    if user is None:
        messages.error(request, "This link is invalid or has expired. Send yourself a new one from Account Settings.")
    else:
        messages.success(request, f"Thank you: {user.email} is confirmed.")
    return redirect("dashboard:settings" if request.user.is_authenticated else "login")


@dashboard_page
@require_POST
def resend_verification(request):
    """Account Settings: mail the verification link again (at most a few times an hour)."""
    if request.user.email_verified_at is not None:
        messages.info(request, "Your email address is already confirmed.")
    elif attempt_count(bucket="verify-mail", identity=str(request.user.pk), window=SIGNUP_WINDOW) > 3:
        messages.error(request, "We sent several links in the last hour already; please check your inbox.")
    else:
        email_verification_send(user=request.user, request=request)
        messages.success(request, f"We sent a new link to {request.user.email}.")
    return redirect("dashboard:settings")


# --- Account Settings > Members (owners) --------------------------------------------------------------


def _member(request, pk: int) -> Membership:
    """A membership of the account the page acts on (another account's is the same 404)."""
    return get_object_or_404(member_list(account=request.account), pk=pk)


@dashboard_page
def members(request):
    """Account Settings > Members: who is in the account, with which role; owners change roles and remove."""
    context = {
        "section": "settings",
        "tab": "members",
        "members": member_list(account=request.account),
        "invitations": pending_invitations(account=request.account),
        "action_form": OnceForm(),
        "roles": [(role.value, role.label, ROLE_DESCRIPTIONS[role]) for role in Role],
    }
    return render(request, "accounts/members.html", context)


@dashboard_page
@require_POST
def member_role(request, pk: int):
    """Give a member another role (their tokens are narrowed to it at once); never the last owner's."""
    membership = _member(request, pk)
    role = request.POST.get("role", "")

    def write() -> str:
        changed = membership_set_role(membership=membership, role=role, request=request)
        messages.success(request, f"{changed.user.username} is now {changed.get_role_display().lower()}.")
        return reverse("dashboard:members")

    return action_post(request, write, back=reverse("dashboard:members"))


@dashboard_page
def member_remove(request, pk: int):
    """Remove a member after confirmation: their tokens on the account stop working at once."""
    membership = _member(request, pk)
    refusal = ""
    if (
        membership.role == Role.OWNER
        and not member_list(account=request.account).filter(role=Role.OWNER).exclude(pk=membership.pk).exists()
    ):
        refusal = LAST_OWNER

    def write(data: dict) -> str:
        membership_remove(membership=membership, request=request)
        messages.success(request, f"{membership.user.username} is no longer a member of {request.account.name}.")
        return reverse("dashboard:members" if membership.user_id != request.user.pk else "dashboard:home")

    return form_page(
        request,
        ConfirmForm(request.POST or None),
        template="accounts/member_remove.html",
        context={
            "section": "settings",
            "title": f"Remove {membership.user.username}?",
            "breadcrumbs": [
                ("Account Settings", reverse("dashboard:settings")),
                ("Members", reverse("dashboard:members")),
            ],
            "submit_label": "Remove member",
            "back_url": reverse("dashboard:members"),
            "membership": membership,
            "refusal": refusal,
        },
        write=write,
        fallback=reverse("dashboard:members"),
    )


@dashboard_page
@require_http_methods(["GET", "POST"])
def member_invite(request):
    """Invite a member by email with a role: a signed link valid 7 days, usable once."""

    def write(data: dict) -> str:
        invitation = invitation_create(account=request.account, email=data["email"], role=data["role"], request=request)
        messages.success(
            request,
            f"We sent an invitation to {invitation.email} ({invitation.get_role_display().lower()}); "
            "the link works once, for 7 days.",
        )
        return reverse("dashboard:members")

    return form_page(
        request,
        InviteForm(request.POST or None),
        template="form_page.html",
        context={
            "section": "settings",
            "title": "Invite a member",
            "breadcrumbs": [
                ("Account Settings", reverse("dashboard:settings")),
                ("Members", reverse("dashboard:members")),
            ],
            "submit_label": "Send invitation",
            "back_url": reverse("dashboard:members"),
        },
        write=write,
        fallback=reverse("dashboard:members"),
    )


@dashboard_page
@require_POST
def invitation_cancel_view(request, pk: int):
    """Cancel a pending invitation: its link stops working at once."""
    invitation = get_object_or_404(Invitation.objects.for_account(request.account), pk=pk)

    def write() -> str:
        if invitation_cancel(invitation=invitation, request=request):
            messages.success(request, f"The invitation of {invitation.email} is cancelled.")
        else:
            messages.info(request, f"The invitation of {invitation.email} was no longer pending.")
        return reverse("dashboard:members")

    return action_post(request, write, back=reverse("dashboard:members"))


@sensitive_post_parameters("password1", "password2")
@never_cache
@require_http_methods(["GET", "POST"])
def invitation(request, token: str):
    """An invitation's link: a signed-in user joins with one click; a newcomer signs up here (or signs in first)."""
    try:
        invitation = invitation_from_token(token)
    except DomainError as exc:
        return render(request, "accounts/invitation.html", {"refusal": str(exc)}, status=410)
    context = {"invitation": invitation}
    signing_up = not request.user.is_authenticated
    form = InvitationSignupForm(request.POST or None) if signing_up else None
    if request.method == "POST" and (not signing_up or form.is_valid()):
        try:
            if signing_up:
                user = invitation_sign_up(
                    token=token,
                    username=form.cleaned_data["username"],
                    password=form.cleaned_data["password1"],
                    request=request,
                )
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            else:
                invitation_accept(token=token, user=request.user, request=request)
        except ValidationError as exc:  # only a newcomer's form has fields a service can refuse
            add_service_errors(form, exc)
        except IntegrityError:  # the same username was taken a moment ago
            form.add_error("username", "This username is taken.")
        except DomainError as exc:
            return render(request, "accounts/invitation.html", {"refusal": str(exc)}, status=409)
        else:
            request.session[SESSION_ACCOUNT] = invitation.account_id
            messages.success(
                request,
                f"Welcome to {invitation.account.name}: you joined as {invitation.get_role_display().lower()}.",
            )
            return redirect("dashboard:home")
    context["form"] = form
    return render(request, "accounts/invitation.html", context, status=400 if form is not None and form.errors else 200)


# --- Account Settings > Activity (owners) -------------------------------------------------------------


@dashboard_page
def activity(request):
    """Account Settings > Activity: who joined, was invited, changed role, left, and which tokens ended."""
    form = ActivityFilterForm(request.GET or None, members=member_list(account=request.account))
    context = {"section": "settings", "tab": "activity", "form": form, "page": None}
    if request.GET and not form.is_valid():
        return render(request, "accounts/activity.html", context, status=400)
    data = form.cleaned_data if request.GET else {}
    events = team_events(account=request.account, actor_user_id=data.get("member"), action=data.get("action"))
    context["page"] = page = paginate(request, events)
    for event in page.object_list:
        event.action_label = TEAM_ACTIONS[event.action]
    return render(request, "accounts/activity.html", context)
