"""Reads of functions: every queryset starts from the account."""

from elbia.accounts.models import Account
from functions.models import Function, FunctionQuerySet, FunctionStatus


def function_list(*, account: Account, status: str | None = None, region: str | None = None) -> FunctionQuerySet:
    """The account's functions, newest first; deleted ones only when ``status`` asks for them.

    Values must already be validated (choices of ``FunctionStatus``, the region catalog).
    """
    queryset = Function.objects.for_account(account)
    queryset = queryset.filter(status=status) if status else queryset.exclude(status=FunctionStatus.DELETED)
    if region:
        queryset = queryset.filter(region=region)
    return queryset.order_by("-created_at", "-id")
