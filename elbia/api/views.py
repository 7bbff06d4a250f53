"""The base of every /v1 endpoint: a view or viewset declares what it serves, this module does the rest.

An object family is a declaration on :class:`ApiViewSet` (NetBox's shape)::

    class ResourceViewSet(CreateMixin, UpdateMixin, DestroyMixin, ApiViewSet):
        selector = staticmethod(resource_list)              # account -> the account's objects
        filterset_class = ResourceFilterSet                 # list parameters, ordering, validation
        serializer_class = ResourceSerializer               # the object as the API shows it
        create_serializer_class = ResourceCreateSerializer  # input shapes
        update_serializer_class = ResourceUpdateSerializer
        create_service = staticmethod(services.resource_or_vpc_create)  # writes: the services
        update_service = staticmethod(services.resource_update)
        delete_service = staticmethod(services.resource_delete)
        related = ("vpc",)                                  # always fetched with the object
        expansions = {"function": Expansion(scope="functions:read", related="function")}
        read_scope, write_scope = "resources:read", "resources:write"

Every view here: authenticates the bearer token, checks the scope (``read_scope`` for safe methods,
``write_scope`` otherwise), budgets the request, refuses unknown query parameters, starts every queryset
from the token's account, looks objects up by their public ID (a malformed one is a 404 without a
query), records successful writes in the audit trail, and answers every error in the contract's shape.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from rest_framework import status, viewsets
from rest_framework.exceptions import NotFound, ParseError, UnsupportedMediaType
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from elbia.api import headers
from elbia.api.exceptions import InvalidParameter
from elbia.api.idempotency import idempotent
from elbia.api.ids import is_public_id
from elbia.api.permissions import require_scope
from elbia.api.throttling import charge_stopped_request
from elbia.audit.services import audit_record

AUDIT_VERBS = {"POST": "create", "PUT": "update", "PATCH": "update", "DELETE": "delete"}
EXPAND = "expand"


@dataclass(frozen=True)
class Expansion:
    """A name ``expand`` accepts: the scope reading the nested object needs, the relation fetching it, and
    what it does (for the OpenAPI document)."""

    scope: str
    related: str
    description: str


class ApiView(APIView):
    """Base of every /v1 view: account, scopes, unknown parameters, audit of writes, errors charged to budgets."""

    read_scope: str = ""
    write_scope: str = ""
    #: The query parameters the view reads; any other is a 400 naming it.
    query_parameters: tuple[str, ...] = ()
    #: The audit trail's name for what the view writes, e.g. "resource" (default: the model's name).
    audit_object: str = ""

    @property
    def account(self):
        return self.request.auth.account

    def allowed_query_parameters(self) -> Iterable[str]:
        return self.query_parameters

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, scope, budget: in the contract's order
        if request.method == "OPTIONS" or not hasattr(self, request.method.lower()):
            return  # OPTIONS describes the endpoint; an unsupported method gets its 405
        allowed = set(self.allowed_query_parameters())
        unknown = sorted(name for name in request.query_params if name not in allowed)
        if unknown:
            accepted = ", ".join(sorted(allowed)) or "none"
            raise InvalidParameter(f"Unknown query parameter '{unknown[0][:64]}'; this endpoint accepts: {accepted}.")

    def handle_exception(self, exc):
        # A request stopped before DRF's throttles ran (401, 403) still counts against its budget.
        return super().handle_exception(charge_stopped_request(exc, self.get_exception_handler_context()))

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        audited = getattr(request, "audited", False)  # recorded in the write's own transaction (creates)
        if request.method not in SAFE_METHODS and 200 <= response.status_code < 300 and not audited:
            self.audit(request, response)
        return response

    def audit_name(self) -> str:
        queryset = getattr(self, "queryset", None)
        return self.audit_object or (queryset.model._meta.model_name if queryset is not None else "")

    def audit(self, request, response, *, within_write: bool = False) -> None:
        """Record every successful write in the audit trail (replays of an earlier request excepted).

        ``within_write``: the caller's transaction holds the write; the event commits with it or not at all.
        """
        if response.get(headers.IDEMPOTENT_REPLAYED) == "true" or not self.audit_name():
            return
        body = response.data if isinstance(response.data, dict) else {}
        try:
            sent = request.data if isinstance(request.data, dict) else {}
        except (ParseError, UnsupportedMediaType):  # a body the view never read (DELETE): nothing was changed by it
            sent = {}
        audit_record(
            action=f"{self.audit_name()}.{AUDIT_VERBS[request.method]}",
            request=request,
            account=self.account,
            object_id=str(body.get("id") or self.kwargs.get("id") or ""),
            changed_fields=sent.keys(),
            within_write=within_write,
        )
        request.audited = True


class ApiViewSet(ApiView, viewsets.GenericViewSet):
    """An object family of the token's account: list and retrieve; the mixins below add the writes.

    Declare ``selector`` (``selector(account=...)`` -> the account's objects), ``filterset_class``,
    ``serializer_class``, ``read_scope`` and ``write_scope``; optionally ``detail_serializer_class``,
    ``related`` and ``expansions``.
    """

    selector: Callable[..., QuerySet]
    #: The object in single-object answers, when it shows more than a list's rows (an invoice's lines).
    detail_serializer_class = None
    related: tuple[str, ...] = ()
    #: A list page's query narrowed to what its rows show (``queryset -> queryset``), when nothing is expanded.
    lean_list: Callable[[QuerySet], QuerySet] | None = None
    expansions: dict[str, Expansion] = {}
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    lookup_value_regex = "[^/]+"

    @property
    def model(self):
        return self.serializer_class.Meta.model

    @property
    def queryset(self):  # for DRF's and drf-spectacular's introspection; requests use get_queryset()
        return self.model._default_manager.none()

    def allowed_query_parameters(self) -> Iterable[str]:
        allowed = list(self.query_parameters)
        if self.action == "list":
            allowed += self.filterset_class.base_filters
            allowed += self.paginator.query_parameters
        if self.action in ("list", "retrieve") and self.expansions:
            allowed.append(EXPAND)
        return allowed

    # --- reading ----------------------------------------------------------------------------------

    @property
    def expand(self) -> set[str]:
        """The names ``expand`` asks for (reads only); unknown is a 400, a name without its scope a 403."""
        if not hasattr(self, "_expand"):
            self._expand = set()
            if self.request.method == "GET" and self.expansions:
                self._expand = parse_expand(self.request.query_params, tuple(self.expansions))
                for name in sorted(self._expand):
                    require_scope(self.request, self.expansions[name].scope)
        return self._expand

    def get_queryset(self) -> QuerySet:
        queryset = self.selector(account=self.account)
        if self.action == "list" and self.lean_list is not None and not self.expand:
            return self.lean_list(queryset)
        related = [*self.related, *(self.expansions[name].related for name in sorted(self.expand))]
        return queryset.select_related(*related) if related else queryset

    def get_object(self):
        """The account's object by its public ID, whatever its status (list filters do not apply)."""
        public_id = self.kwargs[self.lookup_url_kwarg]
        if not is_public_id(public_id, self.model.PUBLIC_ID_PREFIX):
            raise NotFound()  # malformed: no need to ask the database
        obj = self.get_queryset().filter(public_id=public_id).first()
        if obj is None:
            raise NotFound()
        return obj

    def get_serializer_class(self):
        if self.action == "retrieve" and self.detail_serializer_class is not None:
            return self.detail_serializer_class
        return self.serializer_class

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "expand": self.expand}

    def render(self, obj, status_code: int = status.HTTP_200_OK, headers=None) -> Response:
        return Response(self.get_serializer(obj).data, status=status_code, headers=headers)

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, id: str):
        return self.render(self.get_object())

    def service_kwargs(self, obj) -> dict:
        """How services name the object they act on: ``resource_update(resource=...)``."""
        return {self.model._meta.model_name: obj}

    def validated(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)


class CreateMixin:
    """``POST`` on the collection: ``create_serializer_class`` then ``create_service(account=..., **data)``.

    ``201 Created`` with a ``Location`` header; honours ``Idempotency-Key``. The rows the service writes, the
    outbox entries it queues and the audit event commit in one transaction: all of them or none.
    """

    create_serializer_class = None
    create_service: Callable

    @idempotent
    def create(self, request):
        data = self.validated(self.create_serializer_class)
        with transaction.atomic():
            obj = self.create_service(account=self.account, **data)
            location = request.build_absolute_uri(reverse(f"{self.basename}-detail", kwargs={"id": obj.public_id}))
            response = self.render(obj, status.HTTP_201_CREATED, headers={headers.LOCATION: location})
            self.audit(request, response, within_write=True)
        return response


class UpdateMixin:
    """``PATCH`` on an object: ``update_serializer_class`` then ``update_service(<object>=..., **data)``."""

    update_serializer_class = None
    update_service: Callable

    def partial_update(self, request, id: str):
        obj = self.get_object()
        data = self.validated(self.update_serializer_class)
        return self.render(self.update_service(**self.service_kwargs(obj), **data))


class DestroyMixin:
    """``DELETE`` on an object: ``delete_service(<object>=...)``; ``202 Accepted``, the work goes on in a worker."""

    delete_service: Callable

    def destroy(self, request, id: str):
        obj = self.delete_service(**self.service_kwargs(self.get_object()))
        return self.render(obj, status.HTTP_202_ACCEPTED)


def parse_expand(params, allowed: tuple[str, ...]) -> set[str]:
    """The ``expand`` parameter as a set of names from ``allowed``; an unknown name is a 400."""
    raw = params.get(EXPAND)
    if raw is None:
        return set()
    names = {name.strip() for name in raw.split(",") if name.strip()}
    unknown = sorted(names - set(allowed))
    if unknown or not names:
        choices = ", ".join(allowed) or "nothing"
        raise InvalidParameter(f"Parameter 'expand' accepts {choices}; got '{raw[:100]}'.")
    return names
