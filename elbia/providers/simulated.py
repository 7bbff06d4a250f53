"""A provider that pretends: each lifecycle step takes ``ELBIA_PROVISION_DELAY`` seconds.

Failures are chosen by the customer, so every failure path can be exercised
through the public API (documented in docs/resources.md):

- resource tag ``"simulate": "fail"``: provisioning fails for good (``failed`` with a reason);
- ``"simulate": "fail-delete"``: deletion fails for good;
- ``"simulate": "transient"``: every provisioning attempt hits a transient error, so the task
  retries with backoff and finally gives up (``failed``, the reason says so);
- ``"simulate": "flaky"``: the first provisioning attempt hits a transient error, the retry succeeds;
- function tags (a list of strings) say the same with a colon: ``"simulate:fail"`` fails the
  deployment for good, ``"simulate:transient"`` and ``"simulate:flaky"`` behave as above for it.
"""

import time

from django.conf import settings
from django.core.cache import cache

from elbia.providers.base import Provider, ProviderError, TransientProviderError

SIMULATE_TAG = "simulate"


class SimulatedProvider(Provider):
    """Sleeps instead of calling a cloud; fails on demand (see the module docstring)."""

    def provision(self, resource) -> None:
        mode = self._mode(resource)
        self._wait()
        if mode == "fail":
            raise ProviderError(f"Simulated provisioning failure for {resource.public_id} (tag simulate=fail).")
        if mode == "transient":
            raise TransientProviderError("Simulated transient provider error (tag simulate=transient).")
        # The first attempt of a flaky resource fails; cache.add is atomic, so only one attempt sees "added".
        if mode == "flaky" and cache.add(f"simulated-flaky:{resource.pk}", 1, timeout=3600):
            raise TransientProviderError("Simulated transient provider error (tag simulate=flaky, first attempt).")

    def deprovision(self, resource) -> None:
        self._wait()
        if self._mode(resource) == "fail-delete":
            raise ProviderError(f"Simulated deletion failure for {resource.public_id} (tag simulate=fail-delete).")

    def deploy_function(self, function) -> None:
        mode = self._mode(function)
        self._wait()
        if mode == "fail":
            raise ProviderError(f"Simulated deployment failure for {function.public_id} (tag simulate:fail).")
        if mode == "transient":
            raise TransientProviderError("Simulated transient provider error (tag simulate:transient).")
        if mode == "flaky" and cache.add(f"simulated-flaky:function:{function.pk}", 1, timeout=3600):
            raise TransientProviderError("Simulated transient provider error (tag simulate:flaky, first attempt).")

    @staticmethod
    def _mode(obj) -> str:
        """The simulation a resource (``{"simulate": mode}``) or a function (``["simulate:mode"]``) asks for."""
        if isinstance(obj.tags, dict):
            return str(obj.tags.get(SIMULATE_TAG, ""))
        prefix = f"{SIMULATE_TAG}:"
        return next((tag[len(prefix) :] for tag in obj.tags or [] if tag.startswith(prefix)), "")

    @staticmethod
    def _wait() -> None:
        if settings.ELBIA_PROVISION_DELAY > 0:
            time.sleep(settings.ELBIA_PROVISION_DELAY)
