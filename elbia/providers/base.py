"""The provider interface: how resources are really provisioned and functions really deployed.

Views and services never talk to a cloud directly; Celery tasks call the
configured provider (``ELBIA_PROVIDER``). A real cloud provider is a new
subclass registered in ``PROVIDERS``: nothing else changes.

A method that starts work it cannot finish at once (an instance booting) records the provider's id of
what it created on the row (``obj.provider_id``, which the lifecycle saves whatever happens next) and
raises :class:`NotReady`; the task calls it again later, and it carries on from there.
"""

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass


class ProviderError(Exception):
    """The provider refused the work for good; ``str(error)`` is the failure reason shown to the customer."""


class TransientProviderError(Exception):
    """The provider could not do the work now (timeout, throttling): the task retries with backoff."""


class NotReady(Exception):
    """Something the work needs or started is still on its way (a VPC, an instance booting): look again shortly."""


@dataclass(frozen=True)
class InvokeResult:
    """What the provider's run of a function answered: the handler's JSON ``payload`` (its value, or the error
    document when ``function_error`` is set, e.g. ``"Unhandled"``), the output's tail, the run's duration, and
    its cold start's (``None`` when it was warm)."""

    payload: bytes
    function_error: str | None
    log_tail: str
    duration_ms: float
    init_duration_ms: float | None = None


class Provider(ABC):
    """Carries out lifecycle work for resources and functions. Every method must be safe to call twice."""

    @abstractmethod
    def provision(self, resource) -> None:
        """Create the real infrastructure for ``resource`` (compute instance, function compute or VPC)."""

    @abstractmethod
    def deprovision(self, resource) -> None:
        """Tear down the real infrastructure for ``resource``."""

    @abstractmethod
    def deploy_function(self, function) -> None:
        """Deploy (or redeploy) ``function``'s code and configuration."""

    def inventory(self, *, kind: str, region: str) -> Mapping[str, str] | None:
        """What Elbia created of ``kind`` (``compute``, ``vpc`` or ``function``) in ``region`` that still exists.

        Maps each provider id to ``""`` when it is as Elbia left it, or to a word saying how it changed
        (``"stopped"``); whatever is missing is gone. ``None``: this provider cannot tell, so nothing is
        checked for drift (the simulated provider creates nothing).
        """
        return None

    #: Whether the provider runs functions itself (``invoke``); otherwise Elbia's local runtime runs them.
    runs_functions: bool = False

    def invoke(self, function, event: bytes, request_id: str) -> InvokeResult:
        """Run ``function`` once on ``event`` (JSON bytes) and wait for its answer (only if ``runs_functions``)."""
        raise NotImplementedError(f"{type(self).__name__} does not run functions.")
