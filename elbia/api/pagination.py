"""List pagination: a bare JSON array, strict ``limit``/``offset``, ``X-Total-Count`` and an RFC 8288 ``Link``."""

from rest_framework import pagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from elbia.api import headers
from elbia.api.exceptions import InvalidParameter

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 10**9


def parse_bounded_int(params, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """Read an integer query parameter, refusing anything that is not a plain integer within bounds."""
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or not minimum <= int(raw) <= maximum:
        raise InvalidParameter(f"Parameter '{name}' must be an integer from {minimum} to {maximum}.")
    return int(raw)


class LimitOffsetPagination(pagination.BasePagination):
    """``limit`` (1-200, default 50) and ``offset`` (0 or more); anything else is a 400, never a silent clamp."""

    #: The query parameters this pagination reads (a list accepts them besides its filters).
    query_parameters = ("limit", "offset")

    def paginate_queryset(self, queryset, request, view=None):
        self.limit = parse_bounded_int(
            request.query_params, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT
        )
        self.offset = parse_bounded_int(request.query_params, "offset", default=0, minimum=0, maximum=MAX_OFFSET)
        self.request = request
        self.count = queryset.count()
        if self.offset >= self.count:
            return []
        return list(page_slice(queryset, self.offset, self.limit))

    def get_paginated_response(self, data) -> Response:
        return Response(data, headers=self.headers())

    def headers(self) -> dict[str, str]:
        url = self.request.build_absolute_uri()
        links = {"first": self._url(url, 0)}
        if self.offset > 0:
            links["prev"] = self._url(url, max(self.offset - self.limit, 0))
        if self.offset + self.limit < self.count:
            links["next"] = self._url(url, self.offset + self.limit)
        last_offset = max(self.count - 1, 0) // self.limit * self.limit
        links["last"] = self._url(url, last_offset)
        link = ", ".join(f'<{target}>; rel="{rel}"' for rel, target in links.items())
        return {headers.TOTAL_COUNT: str(self.count), headers.LINK: link}

    def _url(self, url: str, offset: int) -> str:
        url = replace_query_param(url, "limit", self.limit)
        return replace_query_param(url, "offset", offset) if offset else remove_query_param(url, "offset")

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "description": f"Maximum results (default {DEFAULT_LIMIT}, at most {MAX_LIMIT}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            },
            {
                "name": "offset",
                "in": "query",
                "required": False,
                "description": "Number of results to skip.",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            },
        ]

    def get_paginated_response_schema(self, schema):
        return schema


def page_slice(queryset, offset: int, limit: int):
    """One page of ``queryset`` in one query, as a deferred join.

    The inner query walks only the ordering index to find the page's primary
    keys; the outer one fetches just those rows. Deep offsets then skip index
    entries instead of whole rows.
    """
    page_ids = queryset.values("pk")[offset : offset + limit]
    return queryset.filter(pk__in=page_ids)
