"""Reads for functions; every queryset starts from the account."""

from django.db.models import Exists, OuterRef, QuerySet

from elbia.accounts.models import Account
from functions.models import Function, FunctionStatus, FunctionTag
from resources.selectors import DEFAULT_ORDERING, ORDERINGS


def function_list(
    *,
    account: Account,
    status: str | None = None,
    runtime: str | None = None,
    region: str | None = None,
    tag: str | None = None,
    ordering: str = DEFAULT_ORDERING,
) -> QuerySet[Function]:
    """The account's functions, newest first by default (ties broken by id), with their resources.

    Values must already be validated (a ``FunctionStatus``, a catalog runtime and region, a valid tag).
    Deleted functions are left out unless ``status`` asks for them. ``tag`` keeps functions having that
    tag among theirs: a semi-join (EXISTS) on the indexed ``FunctionTag`` rows, so no function is listed twice.
    """
    functions = Function.objects.for_account(account)
    functions = functions.filter(status=status) if status else functions.exclude(status=FunctionStatus.DELETED)
    if runtime:
        functions = functions.filter(runtime=runtime)
    if region:
        functions = functions.filter(region=region)
    if tag:
        tagged = FunctionTag.objects.filter(account=account, tag=tag, function=OuterRef("pk"))
        functions = functions.filter(Exists(tagged))
    return functions.select_related("resource").order_by(*ORDERINGS[ordering])
