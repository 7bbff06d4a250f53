"""Recording executions on functions: what metering calls to keep ``last_executed`` current."""

from datetime import datetime

from django.db import connection, transaction
from django.db.models import Case, DateTimeField, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest

from elbia.accounts.models import Account
from functions.models import Function
from resources.models import Resource


def function_record_executions(*, account: Account, last_executed: dict[int, datetime]) -> None:
    """Move each function's ``last_executed`` (and its resource's ``last_execution``) forward, never back.

    ``last_executed`` maps function ids of ``account`` to the latest execution seen in a batch.
    Two UPDATE statements whatever the number of functions: the functions first, then their
    resources from the functions' new values. Ids of other accounts are ignored.
    """
    if not last_executed:
        return
    if connection.vendor == "postgresql":
        _record_postgresql(account, last_executed)
        return
    latest = Case(
        *(When(id=function_id, then=Value(moment)) for function_id, moment in last_executed.items()),
        output_field=DateTimeField(),
    )
    function_latest = Subquery(Function.objects.filter(resource_id=OuterRef("pk")).values("last_executed")[:1])
    with transaction.atomic():
        # Coalesce keeps it portable: PostgreSQL's GREATEST skips NULLs, SQLite's MAX() returns NULL.
        Function.objects.for_account(account).filter(id__in=list(last_executed)).update(
            last_executed=Greatest(Coalesce(F("last_executed"), latest), latest)
        )
        Resource.objects.for_account(account).filter(function__id__in=list(last_executed)).update(
            last_execution=Greatest(Coalesce(F("last_execution"), function_latest), function_latest)
        )


# The moments travel as two arrays (a constant statement, nothing for the ORM to compile per function);
# GREATEST skips NULLs. The resources then take their function's new value.
_FUNCTIONS_SQL = (
    'UPDATE "functions_function" f SET "last_executed" = GREATEST(f."last_executed", v."moment") '
    'FROM unnest(%s::bigint[], %s::timestamptz[]) AS v("id", "moment") WHERE f."account_id" = %s AND f."id" = v."id"'
)
_RESOURCES_SQL = (
    'UPDATE "resources_resource" r SET "last_execution" = GREATEST(r."last_execution", f."last_executed") '
    'FROM "functions_function" f WHERE f."account_id" = %s AND f."id" = ANY(%s) AND r."id" = f."resource_id" '
    'AND r."account_id" = %s'
)


def _record_postgresql(account: Account, last_executed: dict[int, datetime]) -> None:
    ids = list(last_executed)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_FUNCTIONS_SQL, [ids, [last_executed[pk] for pk in ids], account.id])
        cursor.execute(_RESOURCES_SQL, [account.id, ids, account.id])
