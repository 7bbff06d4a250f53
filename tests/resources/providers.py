"""Providers for tests: the simulated one, counting what it is asked to do, or failing in unplanned ways."""

import threading
from collections import Counter

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
