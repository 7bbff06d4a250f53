"""List pagination: a bare JSON array, keyset ``cursor`` links, strict ``limit``/``offset``, counts on request.

- ``limit`` (1-200, default 50). The first page is ``LIMIT limit + 1`` rows (the extra row only says
  whether a next page exists): no count.
- ``next`` (and, on a cursor page, ``prev``) links carry an opaque ``cursor``: the ordering's values of
  the page's last (first) row, so the next page is ``WHERE (created_at, id) < (...) LIMIT ...`` and
  every page costs what the first does, however deep.
- ``offset`` keeps working (a deferred join: the page's keys from the ordering index, then the rows);
  ``cursor`` and ``offset`` together are a 400.
- Counts only on request (PostgREST's convention): ``Prefer: count=exact`` adds ``X-Total-Count``
  and the ``last`` link; ``Prefer: count=estimated`` adds ``X-Total-Count-Estimate`` (PostgreSQL's
  planner estimate; on other databases the exact count, and then ``X-Total-Count`` too).
  ``Preference-Applied`` says what was honoured. A page that shows where the list ends gives the
  exact count for free, whatever was asked.

Any queryset ordered by local, non-null fields whose last one is the primary key works (the
selectors' ``ORDERINGS``: ``created_at``/``-created_at`` with ``id``; invoices by ``period`` or
``created_at`` with ``id``). A queryset not ending with the primary key gets it appended.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import date, datetime

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connections
from django.db.models import Q
from rest_framework import pagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from elbia.api import headers
from elbia.api.exceptions import InvalidParameter

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 10**9
MAX_CURSOR = 512
COUNT_EXACT = "exact"
COUNT_ESTIMATED = "estimated"


def parse_bounded_int(params, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """Read an integer query parameter, refusing anything that is not a plain integer within bounds."""
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12 or not minimum <= int(raw) <= maximum:
        raise InvalidParameter(f"Parameter '{name}' must be an integer from {minimum} to {maximum}.")
    return int(raw)


def requested_count(request) -> str | None:
    """``exact`` or ``estimated`` from the request's ``Prefer`` header(s) (RFC 7240); anything else is ignored."""
    header = request.META.get("HTTP_PREFER", "")
    for preference in header.split(","):
        name, _, value = preference.strip().partition("=")
        if name.strip().lower() == "count":
            value = value.split(";", 1)[0].strip().strip('"').lower()
            if value in (COUNT_EXACT, COUNT_ESTIMATED):
                return value
    return None


# --- keyset ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    """One field of a list's ordering: its name, direction and model field."""

    name: str
    descending: bool
    field: object

    @property
    def expression(self) -> str:
        return f"-{self.name}" if self.descending else self.name


def ordering_keys(queryset) -> tuple[Key, ...]:
    """The queryset's ordering as keys, ending with the primary key (appended when missing)."""
    meta = queryset.model._meta
    names = list(queryset.query.order_by or meta.ordering or [])
    keys = []
    for raw in names:
        if not isinstance(raw, str) or raw == "?":
            raise ImproperlyConfigured(f"Keyset pagination needs an ordering by field names, not {raw!r}.")
        descending = raw.startswith("-")
        name = raw.lstrip("-")
        field = meta.pk if name == "pk" else meta.get_field(name)
        if getattr(field, "null", False) or not getattr(field, "concrete", False) or field.is_relation:
            raise ImproperlyConfigured(f"Keyset pagination needs non-null local fields; {raw!r} is not one.")
        keys.append(Key(field.attname, descending, field))
        if field.primary_key:
            break
    if not keys or not keys[-1].field.primary_key:
        keys.append(Key(meta.pk.attname, keys[0].descending if keys else False, meta.pk))
    return tuple(keys)


def _after(keys: tuple[Key, ...], values: list, *, forward: bool) -> Q:
    """Rows strictly after (``forward``) or before the position ``values`` in the ordering ``keys``.

    The first key's inclusive bound comes first: it is the index range PostgreSQL scans; the
    lexicographic rest only sorts out the ties.
    """

    def op(key: Key, strict: bool) -> str:
        later = key.descending != forward  # later in the listing: smaller when descending (forward)
        return ("gt" if later else "lt") + ("" if strict else "e")

    first = keys[0]
    alternatives = Q()
    for position, key in enumerate(keys):
        condition = Q(**{f"{earlier.name}": value for earlier, value in zip(keys[:position], values, strict=False)})
        alternatives |= condition & Q(**{f"{key.name}__{op(key, True)}": values[position]})
    return Q(**{f"{first.name}__{op(first, False)}": values[0]}) & alternatives


def _value(row, key: Key):
    return row[key.name] if isinstance(row, dict) else getattr(row, key.name)


def _plain(value):
    return value.isoformat() if isinstance(value, date | datetime) else value


def encode_cursor(keys: tuple[Key, ...], row, *, forward: bool) -> str:
    """An opaque cursor for the position of ``row``: the next page starts after it (``forward``) or ends before it."""
    payload = {"o": ",".join(key.expression for key in keys), "v": [_plain(_value(row, key)) for key in keys]}
    if not forward:
        payload["b"] = 1
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, keys: tuple[Key, ...]) -> tuple[list, bool]:
    """The position and direction a cursor holds; a cursor this list did not give out is a 400."""
    invalid = InvalidParameter("Parameter 'cursor' is not a cursor of this list; start again from the first page.")
    if not text or len(text) > MAX_CURSOR or not text.isascii():
        raise invalid
    try:
        payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        raw_values = payload["v"]
        if payload["o"] != ",".join(key.expression for key in keys) or len(raw_values) != len(keys):
            raise invalid
        values = [key.field.to_python(value) for key, value in zip(keys, raw_values, strict=True)]
        forward = not payload.get("b")
    except (binascii.Error, ValueError, TypeError, KeyError, AttributeError, ValidationError):
        raise invalid from None
    if any(value is None or isinstance(value, dict | list) for value in values):
        raise invalid
    return values, forward


# --- the pagination class ---------------------------------------------------------------------------


def estimated_count(queryset) -> int | None:
    """PostgreSQL's planner estimate of the queryset's rows (no rows read); ``None`` on other databases."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


class LimitOffsetPagination(pagination.BasePagination):
    """Keyset pages by default, ``limit``/``offset`` still honoured, counts only on request (module docstring)."""

    #: The query parameters this pagination reads (a list accepts them besides its filters).
    query_parameters = ("limit", "offset", "cursor")

    def paginate_queryset(self, queryset, request, view=None):
        params = request.query_params
        self.request = request
        self.limit = parse_bounded_int(params, "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        if "cursor" in params and "offset" in params:
            raise InvalidParameter(
                "Parameters 'cursor' and 'offset' cannot be used together: a cursor already says where the page starts."
            )
        self.offset = parse_bounded_int(params, "offset", default=0, minimum=0, maximum=MAX_OFFSET)
        self.keys = ordering_keys(queryset)
        queryset = queryset.order_by(*(key.expression for key in self.keys))
        self.cursor = decode_cursor(params["cursor"], self.keys) if "cursor" in params else None
        self.count_wanted = requested_count(request)
        self.count = self.estimate = None

        if self.cursor is not None:
            values, forward = self.cursor
            rows = queryset.filter(_after(self.keys, values, forward=forward))
            if not forward:
                rows = rows.reverse()
            rows = list(rows[: self.limit + 1])
            more = len(rows) > self.limit
            rows = rows[: self.limit]
            if forward:
                self.has_previous, self.has_next = True, more
            else:
                rows.reverse()
                self.has_previous, self.has_next = more, True
        else:
            rows = page_slice(queryset, self.offset, self.limit + 1) if self.offset else queryset[: self.limit + 1]
            rows = list(rows)
            self.has_next = len(rows) > self.limit
            rows = rows[: self.limit]
            self.has_previous = self.offset > 0
            if not self.has_next and (rows or not self.offset):
                self.count = self.offset + len(rows)  # this page shows where the list ends: the count is free
        self.page = rows
        if self.count_wanted and self.count is None:
            if self.count_wanted == COUNT_ESTIMATED:
                self.estimate = estimated_count(queryset)
            if self.estimate is None:
                self.count = queryset.count()
        return rows

    def get_paginated_response(self, data) -> Response:
        return Response(data, headers=self.headers())

    def headers(self) -> dict[str, str]:
        url = self.request.build_absolute_uri()
        first = replace_query_param(url, "limit", self.limit)
        first = remove_query_param(remove_query_param(first, "offset"), "cursor")
        links = {"first": first}
        if self.has_previous:
            if self.cursor is not None:
                links["prev"] = self._cursor_url(first, self.page[0], forward=False) if self.page else first
            else:
                links["prev"] = self._offset_url(first, max(self.offset - self.limit, 0))
        if self.has_next and self.page:
            links["next"] = self._cursor_url(first, self.page[-1], forward=True)
        answer = {}
        applied = None
        if self.count_wanted == COUNT_ESTIMATED and self.estimate is not None:
            # Never below what the request itself has seen.
            seen = self.offset + len(self.page) + (1 if self.has_next else 0)
            answer[headers.TOTAL_COUNT_ESTIMATE] = str(max(self.estimate, seen if self.cursor is None else 0))
            applied = COUNT_ESTIMATED
        elif self.count_wanted and self.count is not None:
            answer[headers.TOTAL_COUNT] = str(self.count)
            if self.count_wanted == COUNT_ESTIMATED:
                answer[headers.TOTAL_COUNT_ESTIMATE] = str(self.count)  # exact is the best estimate there is
            applied = COUNT_EXACT
            links["last"] = self._offset_url(first, max(self.count - 1, 0) // self.limit * self.limit)
        answer[headers.LINK] = ", ".join(f'<{target}>; rel="{rel}"' for rel, target in links.items())
        if applied:
            answer[headers.PREFERENCE_APPLIED] = f"count={applied}"
        answer["Vary"] = headers.PREFER
        return answer

    def _offset_url(self, first: str, offset: int) -> str:
        return replace_query_param(first, "offset", offset) if offset else first

    def _cursor_url(self, first: str, row, *, forward: bool) -> str:
        return replace_query_param(first, "cursor", encode_cursor(self.keys, row, forward=forward))

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
                "description": "Number of results to skip (not with `cursor`).",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "description": "Opaque position from a `next` or `prev` link of this list (not with `offset`).",
                "schema": {"type": "string", "maxLength": MAX_CURSOR},
            },
            {
                "name": headers.PREFER,
                "in": "header",
                "required": False,
                "description": "RFC 7240 preferences: `count=exact` adds `X-Total-Count` and the `last` link; "
                "`count=estimated` adds `X-Total-Count-Estimate` (the database planner's estimate). Lists send no "
                "count otherwise; other preferences are ignored.",
                "schema": {"type": "string"},
                "examples": {"exact": {"value": "count=exact"}, "estimated": {"value": "count=estimated"}},
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
