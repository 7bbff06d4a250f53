"""Providers for the functions tests: the simulated one counting deployments, or one with a bug."""

import threading
from collections import Counter

from elbia.providers.simulated import SimulatedProvider


class CountingProvider(SimulatedProvider):
    """The simulated provider, counting deployments per function id across worker threads."""

    deployments: Counter = Counter()
    lock = threading.Lock()

    def deploy_function(self, function) -> None:
        with self.lock:
            self.deployments[function.pk] += 1
        super().deploy_function(function)


class BrokenProvider(SimulatedProvider):
    """A provider with a bug: every deployment raises an unexpected exception."""

    def deploy_function(self, function) -> None:
        raise KeyError("bug")


class EnvironmentRecordingProvider(SimulatedProvider):
    """The simulated provider, keeping the environment each deployment was handed."""

    environments: dict = {}

    def deploy_function(self, function) -> None:
        self.environments[function.pk] = function.environment
        super().deploy_function(function)
