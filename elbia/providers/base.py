"""The provider interface: how resources are really provisioned and functions really deployed.

Views and services never talk to a cloud directly; Celery tasks call the
configured provider (``ELBIA_PROVIDER``). A real cloud provider is a new
subclass registered in ``PROVIDERS``: nothing else changes.
"""

from abc import ABC, abstractmethod


class ProviderError(Exception):
    """The provider refused the work for good; ``str(error)`` is the failure reason shown to the customer."""


class TransientProviderError(Exception):
    """The provider could not do the work now (timeout, throttling): the task retries with backoff."""


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
