"""The customer dashboard: sign-in, sign-up, overview pages and Account Settings > API Tokens.

Every page but sign-in and sign-up requires a signed-in user of a customer account
and shows only that account's objects (staff users without an account get a 403
page pointing to the admin). Pages are never cached: they show account data.
"""

from datetime import date
from functools import wraps

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from billing.api.serializers import UsageLineSerializer, UsageSerializer
from billing.links import invoice_pdf_url
from billing.periods import EARLIEST_YEAR, current_month, format_month, next_month, parse_month, previous_month
from billing.selectors import PriceMissing, invoice_list, usage_daily, usage_for_month
from elbia import cache
from elbia.accounts.forms import (
    FunctionFilterForm,
    LoginForm,
    ResourceFilterForm,
    SignupForm,
    TokenCreateForm,
)
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
from elbia.api.ids import is_public_id
from elbia.api.throttling import client_ip
from elbia.audit.services import audit_record
from functions.selectors import function_list
from resources.selectors import resource_list

PAGE_SIZE = 50
# How many months back the usage page's month list reaches (earlier months stay reachable with "Previous").
MONTH_CHOICES = 24
SIGNUP_WINDOW = 3600
# How long a generated token form's id is remembered, so a resubmitted form issues no second token.
TOKEN_FORM_TTL = 24 * 3600
# The request a new token's "Try it" command makes: the first that one of its scopes allows.
TRY_PATHS = {"resources:read": "/v1/resources", "functions:read": "/v1/functions", "billing:read": "/v1/usage"}


def dashboard_page(view):
    """Signed in, member of a customer account, never cached; ``request.account`` is the account."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        account = request.user.account
        if account is None:
            return render(request, "accounts/no_account.html", status=403)
        request.account = account
        return view(request, *args, **kwargs)

    return login_required(never_cache(wrapper))


def _add_service_errors(form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: under the field it names, else at the top."""
    errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
    for field, field_errors in errors.items():
        form.add_error(field if field in form.fields else None, field_errors)


def _page(request, queryset):
    """The requested page of ``queryset`` (``?page=``; out-of-range or malformed numbers give the nearest page)."""
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


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
            _add_service_errors(form, exc)
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
    active = Q(status="active")
    resources = resource_list(account=request.account).aggregate(total=Count("id"), active=Count("id", filter=active))
    functions = function_list(account=request.account).aggregate(total=Count("id"), active=Count("id", filter=active))
    usable = Q(revoked_at__isnull=True, expires_at__gt=timezone.now())
    tokens = api_token_list(user=request.user).aggregate(total=Count("id"), active=Count("id", filter=usable))
    month = current_month()
    try:
        usage = UsageSerializer(usage_for_month(account=request.account, month=month)).data
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


def _filtered_list(request, *, form, select, template: str, section: str, decorate=None):
    """An overview page: the filter form, then one page of what ``select`` returns for the valid filters."""
    context = {"section": section, "form": form, "page": None}
    if not form.is_valid():
        return render(request, template, context, status=400)
    page = _page(request, select(account=request.account, **form.filters()))
    if decorate:
        for row in page.object_list:
            decorate(row)
    context.update(page=page, filtered=bool(form.filters()))
    return render(request, template, context)


@dashboard_page
def resources(request):
    """The account's resources, filtered by status, type and region, 50 per page."""

    def select(**filters):
        return resource_list(**filters).select_related("vpc", "function")

    return _filtered_list(
        request,
        form=ResourceFilterForm(request.GET),
        select=select,
        template="resources/list.html",
        section="resources",
    )


@dashboard_page
def functions(request):
    """The account's functions, filtered by status, runtime, region and tag, 50 per page."""
    return _filtered_list(
        request,
        form=FunctionFilterForm(request.GET),
        select=function_list,
        template="functions/list.html",
        section="functions",
    )


# --- Usage and invoices -------------------------------------------------------------


def _requested_month(request):
    """The ``?month=YYYY-MM`` asked for (default: this month, UTC) and an error message; checked as /v1/usage does."""
    today = current_month()
    raw = request.GET.get("month")
    if raw is None:
        return today, None
    try:
        month = parse_month(raw)
    except ValueError:
        return None, f"The month must be written YYYY-MM, from {EARLIEST_YEAR}-01 (for example {format_month(today)})."
    if month > today:
        return None, f"{format_month(month)} has not started yet: choose {format_month(today)} or an earlier month."
    return month, None


def _month_choices(account, month):
    """Months for the picker, newest first: back to the account's first month, at most ``MONTH_CHOICES``."""
    today = current_month()
    first = max(current_month(account.created_at), date(EARLIEST_YEAR, 1, 1))
    choices, cursor = [], today
    while cursor >= first and len(choices) < MONTH_CHOICES:
        choices.append(cursor)
        cursor = previous_month(cursor)
    if month is not None and month not in choices:
        choices.append(month)
    return choices


@dashboard_page
def usage(request):
    """The month's usage and cost exactly as ``GET /v1/usage`` shows them, with a chart of each day's usage."""
    month, error = _requested_month(request)
    today = current_month()
    context = {
        "section": "usage",
        "month": month,
        "current": today,
        "months": _month_choices(request.account, month),
        "error": error,
    }
    if error:
        return render(request, "billing/usage.html", context, status=400)
    context.update(
        previous=previous_month(month) if month > date(EARLIEST_YEAR, 1, 1) else None,
        next=next_month(month) if month < today else None,
        days=usage_daily(account=request.account, month=month),
    )
    try:
        context["usage"] = UsageSerializer(usage_for_month(account=request.account, month=month)).data
    except PriceMissing as exc:
        context["pricing_unavailable"] = str(exc)
        return render(request, "billing/usage.html", context, status=503)
    return render(request, "billing/usage.html", context)


@dashboard_page
def invoices(request):
    """The account's invoices, newest month first, 50 per page, each with a signed link to its PDF."""
    page = _page(request, invoice_list(account=request.account))
    for invoice in page.object_list:
        invoice.pdf_url = invoice_pdf_url(invoice.public_id, request=request)
    context = {"section": "invoices", "page": page, "link_minutes": max(int(settings.ELBIA_PDF_LINK_SECONDS // 60), 1)}
    return render(request, "billing/invoices.html", context)


@dashboard_page
def invoice_detail(request, public_id: str):
    """One invoice of the account with its lines, as the API and the PDF show them; anyone else's is a 404."""
    if not is_public_id(public_id, "INV_"):
        raise Http404("No such invoice.")
    invoice = get_object_or_404(invoice_list(account=request.account), public_id=public_id)
    context = {
        "section": "invoices",
        "invoice": invoice,
        "lines": UsageLineSerializer(invoice.lines.all(), many=True).data,
        "pdf_url": invoice_pdf_url(invoice.public_id, request=request),
    }
    return render(request, "billing/invoice.html", context)


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
        "page": _page(request, api_token_list(user=request.user)),
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
        _add_service_errors(form, exc)
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
