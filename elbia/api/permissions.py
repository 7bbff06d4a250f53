"""Scope checks: each /v1 view names the scope its reads and its writes need."""

from django.core.exceptions import ImproperlyConfigured
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import SAFE_METHODS, BasePermission

from elbia.api.exceptions import InsufficientScope


def required_scope(view, method: str) -> str:
    """The scope ``view`` requires for ``method``: ``read_scope`` for safe methods, ``write_scope`` otherwise."""
    attribute = "read_scope" if method in SAFE_METHODS else "write_scope"
    scope = getattr(view, attribute, None)
    if not scope:
        raise ImproperlyConfigured(f"{type(view).__name__} must set {attribute}.")
    return scope


def require_scope(request, scope: str) -> None:
    """403 ``insufficient_scope`` unless the request's token may use ``scope`` (its own, within its creator's role)."""
    if scope not in request.auth.scopes:
        raise InsufficientScope(scope, role=request.auth.role if scope in request.auth.token_scopes else "")


class HasRequiredScope(BasePermission):
    """Authenticated with a token that carries the view's scope (401 without a token, 403 without the scope)."""

    def has_permission(self, request, view) -> bool:
        if request.auth is None:
            raise NotAuthenticated()
        if request.method == "OPTIONS" or not hasattr(view, request.method.lower()):
            return True  # OPTIONS describes the endpoint; an unsupported method gets its 405
        require_scope(request, required_scope(view, request.method))
        return True
