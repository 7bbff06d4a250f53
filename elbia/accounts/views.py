"""The customer dashboard's own pages: sign-in, sign-up, the overview and Account Settings > API Tokens.

Each app's pages live in that app (``resources/views.py``, ``functions/views.py``, ``billing/views.py``);
the overview here reads every app's selectors, as the ground floor's one page allowed to.

Every page but sign-in and sign-up requires a signed-in user of a customer account
and shows only that account's objects (staff users without an account get a 403
page pointing to the admin). Pages are never cached: they show account data.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from billing.periods import current_month
from billing.selectors import PriceMissing, usage_for_month
from elbia import cache
from elbia.accounts.forms import LoginForm, SignupForm, TokenCreateForm
from elbia.accounts.models import TokenEnd
from elbia.accounts.selectors import api_token_list
from elbia.accounts.services import (
    account_create,
    email_verification_send,
    email_verify,
    mail_user,
    token_issue,
    token_revoke,
)
from elbia.accounts.throttling import attempt_count
from elbia.api.throttling import client_ip
from elbia.audit.services import audit_record
from elbia.lifecycle import count_live
from elbia.pages import add_service_errors, dashboard_page, paginate
from functions.selectors import function_list
from resources.selectors import resource_list

SIGNUP_WINDOW = 3600
# How long a generated token form's id is remembered, so a resubmitted form issues no second token.
TOKEN_FORM_TTL = 24 * 3600
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
    """What the account runs, at a glance, and how to reach the API."""
    resources = count_live(resource_list(account=request.account))
    functions = count_live(function_list(account=request.account))
    usable = Q(revoked_at__isnull=True, expires_at__gt=timezone.now())
    tokens = api_token_list(user=request.user).aggregate(total=Count("id"), active=Count("id", filter=usable))
    month = current_month()
    try:
        usage = usage_for_month(account=request.account, month=month)
    except PriceMissing:
        usage = None
    context = {
        "section": "home",
        "resources": resources,
        "functions": functions,
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


@dashboard_page
def tokens(request):
    """Account Settings > API Tokens: the user's tokens, never their secrets."""
    context = {
        "section": "settings",
        "tab": "tokens",
        "token_days": settings.ELBIA_TOKEN_DAYS,
        "page": paginate(request, api_token_list(user=request.user)),
    }
    return render(request, "accounts/tokens.html", context)


@dashboard_page
@require_http_methods(["GET", "POST"])
def token_create(request):
    """Generate New Token; the answer to the POST is the only place its secrets ever appear."""
    context = {"section": "settings", "tab": "tokens", "token_days": settings.ELBIA_TOKEN_DAYS}
    if request.method == "GET":
        context["form"] = TokenCreateForm()
        return render(request, "accounts/token_new.html", context)

    form = TokenCreateForm(request.POST)
    context["form"] = form
    if not form.is_valid():
        return render(request, "accounts/token_new.html", context, status=400)
    once_key = f"token-form:{request.user.pk}:{form.cleaned_data['form_id']}"
    if not cache.add(once_key, 1, timeout=TOKEN_FORM_TTL):  # degraded to this process while Redis is down
        messages.warning(
            request,
            "That form was already submitted and its token generated; a token's secret is shown only once. "
            "Generate a new token if you need another.",
        )
        return redirect("dashboard:tokens")
    try:
        issued = token_issue(user=request.user, scopes=form.cleaned_data["scopes"], name=form.cleaned_data["name"])
    except ValidationError as exc:
        cache.delete(once_key)
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
    api_token = get_object_or_404(api_token_list(user=request.user), pk=pk)
    if request.method == "POST" and request.POST.get("confirmed") == "yes":
        if token_revoke(api_token=api_token, reason=TokenEnd.BY_USER, request=request):
            messages.success(request, f"The token “{api_token.name}” is revoked. Requests using it are now refused.")
        else:
            messages.info(request, f"The token “{api_token.name}” was already revoked.")
        return redirect("dashboard:tokens")
    context = {"section": "settings", "tab": "tokens", "api_token": api_token}
    return render(request, "accounts/token_revoke.html", context)


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
