"""Reads for functions; every queryset starts from the account."""

from django.db.models import QuerySet

from elbia.accounts.models import Account
from functions.models import Function, Invocation


def function_list(*, account: Account) -> QuerySet[Function]:
    """The account's functions, deleted ones included (``functions.filtersets`` filters, hides and orders them)."""
    return Function.objects.for_account(account)


def invocation_list(*, account: Account) -> QuerySet[Invocation]:
    """The account's invocations (kept 7 days), newest first."""
    return Invocation.objects.for_account(account)
