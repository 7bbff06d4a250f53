"""The base every /v1 view builds on: account-scoped querysets, public-ID lookups, expansion."""

from rest_framework import viewsets
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import SAFE_METHODS

from elbia.api.exceptions import InvalidParameter
from elbia.audit.services import audit_record

AUDIT_VERBS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}


class AccountScopedMixin:
    """Every queryset starts from the token's account: another account's objects cannot be reached.

    Subclasses set ``queryset`` (the model's manager must offer ``for_account``),
    ``read_scope`` and ``write_scope``; objects are looked up by their public ID.
    """

    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    audit_object: str = ""  # the name audit records use, e.g. "resource"; default: the model's name
    read_scope: str = ""
    write_scope: str = ""

    @property
    def account(self):
        return self.request.auth.account

    def get_queryset(self):
        return self.queryset.model.objects.for_account(self.account)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if request.method not in SAFE_METHODS and 200 <= response.status_code < 300:
            self.audit(request, response)
        return response

    def audit(self, request, response) -> None:
        """Record every successful write in the audit trail (replays of an earlier request excepted)."""
        if response.get("Idempotent-Replayed") == "true":
            return
        body = response.data if isinstance(response.data, dict) else {}
        try:
            sent = request.data if isinstance(request.data, dict) else {}
        except (ParseError, UnsupportedMediaType):  # a body the view never read (DELETE): nothing was changed by it
            sent = {}
        audit_record(
            action=f"{self.audit_object or self.queryset.model._meta.model_name}.{AUDIT_VERBS[request.method]}",
            request=request,
            account=self.account,
            object_id=str(body.get("id") or self.kwargs.get(self.lookup_url_kwarg) or ""),
            changed_fields=sent.keys(),
        )


class AccountScopedViewSet(AccountScopedMixin, viewsets.GenericViewSet):
    """Base viewset of the /v1 API."""


class AccountScopedAPIView(AccountScopedMixin, GenericAPIView):
    """Base single-endpoint view of the /v1 API."""


def parse_expand(params, allowed: tuple[str, ...]) -> set[str]:
    """The ``expand`` parameter as a set of names from ``allowed``; an unknown name is a 400."""
    raw = params.get("expand")
    if raw is None:
        return set()
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = sorted(names - set(allowed))
    if unknown or not names:
        choices = ", ".join(allowed) or "nothing"
        raise InvalidParameter(f"Parameter 'expand' accepts {choices}; got '{raw[:100]}'.")
    return names


def parse_choice(params, name: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
    """A query parameter that must be one of ``allowed``; anything else is a 400."""
    raw = params.get(name)
    if raw is None:
        return default
    if raw not in allowed:
        raise InvalidParameter(f"Parameter '{name}' must be one of: {', '.join(allowed)}.")
    return raw
