"""Drift: what the provider reports, against what the database says of the active rows of one kind.

Each app's periodic task (``resources.tasks.detect_resource_drift``, ``functions.tasks.detect_function_drift``)
calls :func:`check` with its active rows and the service that fails drifted ones. Per region that has such
rows, the provider lists what exists (:meth:`~elbia.providers.base.Provider.inventory`, paged through the
provider's own list calls), then the rows are read ``BATCH`` at a time (keyset on the primary key, over a
partial index of active rows) and compared in memory; each batch's drifted rows are failed with one
UPDATE per kind of change. The cost is one pass over the provider's list and one over the active rows,
whatever their number, with no per-row query.

A row that became active after the listing started is left for the next run (its instance may be newer
than the list); a row without a provider id (made by another provider) cannot be checked. The services
only fail rows still ``active``, so a row deleted meanwhile, or two checks at once, do no harm.
"""

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping

from django.db.models import QuerySet
from django.utils import timezone

from elbia.providers import get_provider

BATCH = 2000
GONE = "gone"


def drift_reason(noun: str, change: str) -> str:
    """The failure reason of a row whose ``noun`` (``instance``, ``Lambda function``) drifted."""
    if change == GONE:
        return f"Drift: its {noun} was deleted or terminated outside Elbia (the provider no longer reports it)."
    return f"Drift: its {noun} is {change}, a change made outside Elbia."


def drifted(rows: QuerySet, inventory: Mapping[str, str]) -> Iterator[tuple[str, list[int]]]:
    """``(change, ids)`` of the ``rows`` whose provider id ``inventory`` lacks (``GONE``) or reports changed."""
    last = 0
    while batch := list(rows.filter(pk__gt=last).order_by("pk").values_list("pk", "provider_id")[:BATCH]):
        last = batch[-1][0]
        changes: dict[str, list[int]] = defaultdict(list)
        for pk, provider_id in batch:
            change = inventory.get(provider_id, GONE)
            if change:
                changes[change].append(pk)
        yield from changes.items()


def check(*, kind: str, noun: str, rows: QuerySet, done_at: str, fail: Callable[[list[int], str], int]) -> int:
    """Fail the drifted ``rows`` (active ones of ``kind``) through ``fail(ids, reason)``; how many were failed.

    ``done_at`` names the field recording when a row became active (rows newer than the listing wait).
    Nothing is checked when the provider cannot list what exists (the simulated provider).
    """
    provider = get_provider()
    failed = 0
    regions = list(rows.order_by("region").values_list("region", flat=True).distinct())
    for region in regions:
        listed_at = timezone.now()
        inventory = provider.inventory(kind=kind, region=region)
        if inventory is None:
            return 0
        candidates = rows.filter(region=region, **{f"{done_at}__lt": listed_at}).exclude(provider_id="")
        for change, ids in drifted(candidates, inventory):
            failed += fail(ids, drift_reason(noun, change))
    return failed
