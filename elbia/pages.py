"""The base of every dashboard page: signed-in customers only, one account, never cached.

Pages live in their apps (``resources/views.py``, ``functions/views.py``, ``billing/views.py``); this is
what they share: the ``dashboard_page`` decorator, paging, list pages driven by the app's FilterSet, and
the one mapping of domain errors (``elbia.errors``) and validation errors onto a page.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from elbia.errors import DomainError

PAGE_SIZE = 50


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


def paginate(request, queryset) -> Page:
    """The requested page of ``queryset`` (``?page=``; out-of-range or malformed numbers give the nearest page)."""
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def add_service_errors(form, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: under the field it names, else at the top."""
    errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
    for field, field_errors in errors.items():
        form.add_error(field if field in form.fields else None, field_errors)


def report_refusal(request, exc: DomainError) -> None:
    """Tell the customer why a service refused (a conflict, a rule): a message on the next page."""
    messages.error(request, str(exc))


def list_page(request, *, filterset_class, queryset, template: str, section: str, context=None):
    """An overview page: the FilterSet's form, then one page of ``queryset`` filtered by it.

    An empty choice means "all" (the form's "All ..." options). Invalid values answer 400 with the
    form showing why.
    """
    filterset = filterset_class(request.GET, queryset=queryset, request=request, blank_is_all=True)
    context = {"section": section, "filterset": filterset, "page": None, **(context or {})}
    if not filterset.is_valid():
        return render(request, template, context, status=400)
    filtered = any(request.GET.get(field.name) for field in filterset.page_fields())
    context.update(page=paginate(request, filterset.qs), filtered=filtered)
    return render(request, template, context)
