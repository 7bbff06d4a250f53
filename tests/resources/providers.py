"""Providers for tests: the simulated one, counting what it is asked to do, or failing in unplanned ways."""

import threading
from collections import Counter

from elbia.providers import NotReady, TransientProviderError
from elbia.providers.simulated import SimulatedProvider


class CountingProvider(SimulatedProvider):
    """The simulated provider, counting calls per (operation, resource id) across worker threads."""

    calls: Counter = Counter()
    lock = threading.Lock()

    def provision(self, resource) -> None:
        with self.lock:
            self.calls["provision", resource.pk] += 1
        super().provision(resource)

    def deprovision(self, resource) -> None:
        with self.lock:
            self.calls["deprovision", resource.pk] += 1
        super().deprovision(resource)


class BrokenProvider(SimulatedProvider):
    """A provider with a bug: every call raises an unexpected exception."""

    def provision(self, resource) -> None:
        raise KeyError("bug")


class BootingProvider(SimulatedProvider):
    """Starts work it cannot finish at once, as a cloud does: the first call records a provider id and
    raises NotReady, the next two find it still booting, the fourth hits a transient error, the fifth
    finds it ready. ``looks`` counts the calls per resource id."""

    looks: Counter = Counter()

    def provision(self, resource) -> None:
        self.looks[resource.pk] += 1
        if self.looks[resource.pk] == 1:
            resource.provider_id = f"sim-{resource.public_id}"
        if self.looks[resource.pk] <= 3:
            raise NotReady()
        if self.looks[resource.pk] == 4:
            raise TransientProviderError("Throttled (simulated).")


class StuckProvider(SimulatedProvider):
    """Work that never finishes: every look finds it still on its way."""

    def provision(self, resource) -> None:
        raise NotReady()


class InventoryProvider(SimulatedProvider):
    """Reports ``listed`` (provider id -> change) as what exists, in every region, for every kind."""

    listed: dict[str, str] = {}

    def inventory(self, *, kind: str, region: str):
        return self.listed
