"""The provider registry: ``get_provider()`` returns the provider named by ``settings.ELBIA_PROVIDER``.

``ELBIA_PROVIDER`` is a name from ``PROVIDERS`` (``simulated``, ``aws``) or the dotted path
of a :class:`~elbia.providers.base.Provider` subclass, so a real cloud
provider is added by writing that class and registering it here.
"""

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from elbia.providers.base import NotReady, Provider, ProviderError, TransientProviderError

PROVIDERS: dict[str, str] = {
    "simulated": "elbia.providers.simulated.SimulatedProvider",
    "aws": "elbia.providers.aws.AwsProvider",
}

__all__ = ["PROVIDERS", "NotReady", "Provider", "ProviderError", "TransientProviderError", "get_provider"]


def get_provider() -> Provider:
    """The configured provider (one instance per process and setting)."""
    return _load(settings.ELBIA_PROVIDER)


@cache
def _load(name: str) -> Provider:
    path = PROVIDERS.get(name, name)
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"ELBIA_PROVIDER={name!r} is neither one of {', '.join(PROVIDERS)} nor an importable class: {exc}"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise ImproperlyConfigured(f"ELBIA_PROVIDER={name!r} is not a Provider subclass.")
    return cls()
