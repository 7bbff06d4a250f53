"""Compile the ``filter`` query parameter (a JSON document) into a Django ``Q`` over a declared whitelist.

A list view declares which public fields can be filtered and the fixed ORM path behind each one::

    RESOURCE_FILTER = JsonFilter(
        fields={
            "id": FilterField("public_id"),
            "status": FilterField("status", kind="choice", choices=("pending", "active")),
            "created_at": FilterField("created_at", kind="datetime"),
        },
        tags_field="tags",
    )
    queryset = queryset.filter(RESOURCE_FILTER.compile(request.query_params["filter"]))

The document
------------
The top level is a JSON object. Each key is a declared field, ``tags.<key>`` (when ``tags_field`` is set) or a
combinator; several keys in one object are ANDed. A field maps to a bare value (equality) or to an object of
operators, also ANDed: ``{"created_at": {"$gte": "2025-01-01T00:00:00Z", "$lt": "2025-02-01T00:00:00Z"}}``.

Combinators: ``$and`` and ``$or`` take a non-empty list of non-empty filter objects, ``$not`` takes one non-empty
filter object. The empty top-level object ``{}`` matches everything.

Operators and the kinds of field that accept them:

=================  =====================================================  =============================
operator           meaning                                                kinds
=================  =====================================================  =============================
``$eq``            equal (same as a bare value)                           all
``$ne``            not equal; also matches a null field or absent tag     all
``$in``            one of a list of 1 to 100 values                       all
``$nin``           none of such a list; also matches null / absent        all
``$gt $gte``       greater than (or equal)                                string, datetime, integer
``$lt $lte``       less than (or equal)                                   string, datetime, integer
``$contains``      contains the substring (case-sensitive)                string
``$startswith``    starts with the prefix (case-sensitive)                string
``$exists``        ``true``: the field is not null / the tag is present   all
=================  =====================================================  =============================

Values must match the field's kind: ``string`` takes JSON strings (``$gt``/``$lt`` compare them in the database's
collation order); ``choice`` takes one of the declared choices; ``datetime`` takes an RFC 3339 string with ``Z``
or a numeric offset, compared as an instant; ``integer`` takes a JSON integer within 64 bits. ``null`` is never a
value: use ``{"$exists": false}``. ``$exists`` takes a boolean. Tag values are strings and tags accept every
string operator.

Negation is a true complement: ``$ne``, ``$nin`` and ``$not`` also match rows where the field is null or the tag
is absent (for plain fields Django's negation of a nullable column already does so; tag conditions are built
as "has the key AND the value matches", which is never unknown, so their negation is exact). This assumes the
tags column itself is never SQL NULL (an empty object instead) and tag values are JSON strings.

Refused, each with :class:`~elbia.api.exceptions.InvalidParameter` and a message starting with
``Parameter 'filter'`` that names the rule and where it was broken (a path like ``filter.$or[1].status.$in``):

* at most 2048 bytes of UTF-8;
* depth at most 4, where the top-level object has depth 1 and each filter object inside ``$and``, ``$or`` or
  ``$not`` is one deeper than the object holding that combinator (operator objects of a field add nothing);
* at most 20 conditions, a condition being one field-operator pair (a bare value counts as one ``$eq``);
* invalid JSON, duplicate keys, ``NaN``/``Infinity``, integers beyond 64 bits, strings holding NUL or lone
  surrogates (PostgreSQL cannot store them), unknown fields or operators, operators a kind does not support, and
  values of the wrong type.

Security
--------
No user text becomes an ORM lookup path. A public field name only selects one of the caller's declared
:class:`FilterField` paths, and the operator selects one lookup from a fixed table. A tag key (everything after
the first ``tags.``; it may itself contain dots, so ``tags.app.tier`` is the key ``app.tier``) must match
``^[A-Za-z][A-Za-z0-9_.:/-]{0,63}$`` and is only ever passed as a value: the condition is built from lookup
expressions over ``KeyTextTransform(key, tags_field)`` and ``HasKey(F(tags_field), key)``, so a key like
``a__b`` stays the literal key ``a__b`` and reaches SQL as a bound parameter. Keys must start with a letter
because Django's JSON key transform reads an integer-like key (``"10"``, ``"-1"``, ``"1_0"``) as an array index.
"""

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NoReturn

from django.db.models import F, Q
from django.db.models.fields.json import HasKey, KeyTextTransform
from django.db.models.lookups import (
    Contains,
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
    Lookup,
    StartsWith,
)

from elbia.api.exceptions import InvalidParameter
from elbia.api.serializers import parse_rfc3339

MAX_BYTES = 2048
MAX_DEPTH = 4
MAX_CONDITIONS = 20
MAX_LIST_ITEMS = 100

FieldKind = Literal["string", "choice", "datetime", "integer"]

TAG_PREFIX = "tags."
TAG_KEY_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_.:/-]{0,63}", re.ASCII)

_PUBLIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_PLAIN_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_.:/$-]+", re.ASCII)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

_COMBINATORS = ("$and", "$or", "$not")
_ORDERING_OPERATORS = ("$gt", "$gte", "$lt", "$lte")
_PATTERN_OPERATORS = ("$contains", "$startswith")
_EQUALITY_OPERATORS = ("$eq", "$ne", "$in", "$nin", "$exists")
OPERATORS: tuple[str, ...] = _EQUALITY_OPERATORS + _ORDERING_OPERATORS + _PATTERN_OPERATORS

OPERATORS_BY_KIND: dict[str, tuple[str, ...]] = {
    "string": OPERATORS,
    "choice": _EQUALITY_OPERATORS,
    "datetime": _EQUALITY_OPERATORS + _ORDERING_OPERATORS,
    "integer": _EQUALITY_OPERATORS + _ORDERING_OPERATORS,
}

# Operator -> (Django lookup name, lookup class for expressions, negated?). ``$exists`` is handled on its own.
_LOOKUPS: dict[str, tuple[str, type[Lookup], bool]] = {
    "$eq": ("exact", Exact, False),
    "$ne": ("exact", Exact, True),
    "$in": ("in", In, False),
    "$nin": ("in", In, True),
    "$gt": ("gt", GreaterThan, False),
    "$gte": ("gte", GreaterThanOrEqual, False),
    "$lt": ("lt", LessThan, False),
    "$lte": ("lte", LessThanOrEqual, False),
    "$contains": ("contains", Contains, False),
    "$startswith": ("startswith", StartsWith, False),
}


@dataclass(frozen=True)
class FilterField:
    """One filterable public field: the fixed ORM path it maps to, its kind and, for ``choice``, the values allowed.

    ``path`` is trusted code, never user input (``"vpc__public_id"`` is fine). ``choices`` is required for, and
    only allowed with, ``kind="choice"``.
    """

    path: str
    kind: FieldKind = "string"
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in OPERATORS_BY_KIND:
            raise ValueError(f"Unknown filter field kind {self.kind!r}.")
        if bool(self.choices) != (self.kind == "choice"):
            raise ValueError("A filter field has choices if and only if its kind is 'choice'.")


class JsonFilter:
    """A compiler from ``filter`` documents to ``Q`` objects over a fixed set of fields; see the module docstring.

    ``fields`` maps public names to :class:`FilterField`; ``tags_field`` names a JSON object field whose keys
    become filterable as ``tags.<key>`` (``None`` disables tags). Instances are immutable and thread-safe.
    """

    def __init__(self, fields: Mapping[str, FilterField], *, tags_field: str | None = None) -> None:
        for name in fields:
            if not _PUBLIC_NAME.fullmatch(name):
                raise ValueError(f"Filter field name {name!r} must be an identifier.")
        self.fields: dict[str, FilterField] = dict(fields)
        self.tags_field = tags_field
        self.allowed_fields: tuple[str, ...] = (*sorted(self.fields), *([f"{TAG_PREFIX}<key>"] if tags_field else []))

    def compile(self, text: str) -> Q:
        """Parse and validate ``text`` (the URL-decoded parameter) and return the ``Q`` it denotes.

        Raises :class:`~elbia.api.exceptions.InvalidParameter` for every invalid input, and nothing else.
        """
        return self.compile_document(text).condition

    def compile_document(self, text: str) -> "CompiledFilter":
        """``compile``, also telling which public fields the document names."""
        document = _parse(text)
        if not isinstance(document, dict):
            raise InvalidParameter(f"Parameter 'filter' must be a JSON object, not {_json_type(document)}.")
        compilation = _Compilation(self)
        condition = compilation.filter_object(document, depth=1, path="filter", allow_empty=True)
        return CompiledFilter(condition=condition, fields=frozenset(compilation.fields))


@dataclass(frozen=True)
class CompiledFilter:
    """A compiled ``filter`` document: its condition and the public fields it names anywhere."""

    condition: Q
    fields: frozenset[str]


@dataclass(frozen=True)
class _Target:
    """What a public field name resolved to: a declared ORM path, or one key of the tags JSON field."""

    name: str
    kind: FieldKind
    choices: tuple[str, ...]
    orm_path: str
    tag_key: str | None

    def clean(self, value: Any, *, path: str) -> Any:
        """Validate one operand against the kind and return it in the form the ORM expects."""
        if self.kind == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                _refuse(path, f"field {_shown(self.name)} takes an integer, not {_json_type(value)}")
            return value
        if not isinstance(value, str):
            _refuse(path, f"field {_shown(self.name)} takes a string, not {_json_type(value)}")
        _check_string(value, path=path)
        if self.kind == "choice" and value not in self.choices:
            _refuse(path, f"{_shown(value)} is not a valid {self.name}", f"Allowed: {', '.join(self.choices)}.")
        if self.kind == "datetime":
            return _parse_datetime(value, field_name=self.name, path=path)
        return value

    def matches(self, operator: str, value: Any) -> Q:
        lookup_name, lookup_class, negated = _LOOKUPS[operator]
        if self.tag_key is None:
            q = Q(**{f"{self.orm_path}__{lookup_name}": value})
        else:
            value_lookup = lookup_class(KeyTextTransform(self.tag_key, self.orm_path), value)
            q = Q(self._has_key()) & Q(value_lookup)
        return ~q if negated else q

    def exists(self, present: bool) -> Q:
        if self.tag_key is None:
            return Q(**{f"{self.orm_path}__isnull": not present})
        q = Q(self._has_key())
        return q if present else ~q

    def _has_key(self) -> HasKey:
        return HasKey(F(self.orm_path), self.tag_key)


class _Compilation:
    """The state of one ``compile`` call: the condition count and the declared fields."""

    def __init__(self, json_filter: JsonFilter) -> None:
        self.json_filter = json_filter
        self.conditions = 0
        self.fields: set[str] = set()

    def filter_object(self, document: dict[str, Any], *, depth: int, path: str, allow_empty: bool = False) -> Q:
        if depth > MAX_DEPTH:
            _refuse(path, f"nesting is deeper than {MAX_DEPTH}")
        if not document and not allow_empty:
            _refuse(path, "a filter object must not be empty")
        q = Q()
        for key, value in document.items():
            key_path = _child_path(path, key)
            if key in _COMBINATORS:
                q &= self.combination(key, value, depth=depth, path=key_path)
            else:
                q &= self.field_conditions(key, value, path=key_path)
        return q

    def combination(self, combinator: str, value: Any, *, depth: int, path: str) -> Q:
        if combinator == "$not":
            if not isinstance(value, dict):
                _refuse(path, f"'$not' takes a filter object, not {_json_type(value)}")
            return ~self.filter_object(value, depth=depth + 1, path=path)
        if not isinstance(value, list) or not value:
            _refuse(path, f"'{combinator}' takes a non-empty list of filter objects")
        combined = Q()
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if not isinstance(item, dict):
                _refuse(item_path, f"'{combinator}' takes filter objects, not {_json_type(item)}")
            item_q = self.filter_object(item, depth=depth + 1, path=item_path)
            combined = combined & item_q if combinator == "$and" else combined | item_q
        return combined

    def field_conditions(self, name: str, value: Any, *, path: str) -> Q:
        target = self.target(name, path=path)
        if not isinstance(value, dict):
            return self.condition(target, "$eq", value, path=path)
        if not value:
            _refuse(path, f"the operator object of field {_shown(name)} must not be empty")
        q = Q()
        for operator, operand in value.items():
            q &= self.condition(target, operator, operand, path=_child_path(path, operator))
        return q

    def target(self, name: str, *, path: str) -> _Target:
        field = self.json_filter.fields.get(name)
        if field is not None:
            self.fields.add(name)
            return _Target(name, field.kind, field.choices, field.path, tag_key=None)
        tags_field = self.json_filter.tags_field
        if tags_field and name.startswith(TAG_PREFIX):
            key = name.removeprefix(TAG_PREFIX)
            if not TAG_KEY_PATTERN.fullmatch(key):
                _refuse(
                    path,
                    f"invalid tag key {_shown(key)}: it must start with a letter and have 1 to 64 characters "
                    "among letters, digits and _ . : / -",
                )
            return _Target(name, "string", (), tags_field, tag_key=key)
        if name.startswith("$"):
            _refuse(path, f"unknown combinator {_shown(name)}", f"Allowed: {', '.join(_COMBINATORS)}.")
        _refuse(path, f"unknown field {_shown(name)}", f"Allowed: {', '.join(self.json_filter.allowed_fields)}.")

    def condition(self, target: _Target, operator: str, operand: Any, *, path: str) -> Q:
        if operator not in OPERATORS:
            _refuse(path, f"unknown operator {_shown(operator)}", f"Allowed: {', '.join(OPERATORS)}.")
        if operator not in OPERATORS_BY_KIND[target.kind]:
            _refuse(
                path,
                f"operator '{operator}' is not supported by {target.kind} field {_shown(target.name)}",
                f"Supported: {', '.join(OPERATORS_BY_KIND[target.kind])}.",
            )
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            _refuse(path, f"more than {MAX_CONDITIONS} conditions")
        if operator == "$exists":
            if not isinstance(operand, bool):
                _refuse(path, f"'$exists' takes true or false, not {_json_type(operand)}")
            return target.exists(operand)
        if operator in ("$in", "$nin"):
            if not isinstance(operand, list) or not 1 <= len(operand) <= MAX_LIST_ITEMS:
                _refuse(path, f"'{operator}' takes a list of 1 to {MAX_LIST_ITEMS} values")
            value: Any = [target.clean(item, path=f"{path}[{index}]") for index, item in enumerate(operand)]
        else:
            value = target.clean(operand, path=path)
        return target.matches(operator, value)


def _parse(text: str) -> Any:
    """Decode the JSON text under the size limit, refusing what PostgreSQL or the ORM could not take."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidParameter("Parameter 'filter' must be valid Unicode text.") from None
    if size > MAX_BYTES:
        raise InvalidParameter(f"Parameter 'filter' is too long: {size} bytes, at most {MAX_BYTES}.")
    try:
        return json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_int=_int64,
            parse_float=_finite_float,
            parse_constant=_refuse_constant,
        )
    except json.JSONDecodeError as error:
        raise InvalidParameter(
            f"Parameter 'filter' is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})."
        ) from None
    except RecursionError:
        raise InvalidParameter("Parameter 'filter' is nested too deeply to parse.") from None


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        _check_string(key)
        if key in document:
            raise InvalidParameter(f"Parameter 'filter' has a duplicate key {_shown(key)}.")
        document[key] = value
    return document


def _int64(literal: str) -> int:
    value = int(literal)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise InvalidParameter(f"Parameter 'filter' has an integer beyond 64 bits: {_shown(literal)}.")
    return value


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise InvalidParameter(f"Parameter 'filter' has a number out of range: {_shown(literal)}.")
    return value


def _refuse_constant(literal: str) -> float:
    raise InvalidParameter(f"Parameter 'filter' is not valid JSON: {literal} is not a JSON value.")


def _check_string(value: str, *, path: str | None = None) -> None:
    """Refuse a string PostgreSQL cannot store: one holding NUL or an unpaired surrogate."""
    where = f" (at {path})" if path else ""
    if "\x00" in value:
        raise InvalidParameter(f"Parameter 'filter' has a string with a NUL character (\\u0000){where}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidParameter(f"Parameter 'filter' has a string with an unpaired surrogate{where}.") from None


def _parse_datetime(value: str, *, field_name: str, path: str) -> datetime:
    """Parse an RFC 3339 date-time with a ``Z`` or numeric offset into an aware UTC datetime."""
    try:
        return parse_rfc3339(value)
    except ValueError:
        _refuse(
            path,
            f"field {_shown(field_name)} takes an RFC 3339 date-time with a time zone "
            f"(e.g. 2025-01-01T00:00:00Z), not {_shown(value)}",
        )


def _refuse(path: str, problem: str, hint: str = "") -> NoReturn:
    raise InvalidParameter(f"Parameter 'filter': {problem} (at {path}).{f' {hint}' if hint else ''}")


def _child_path(path: str, key: str) -> str:
    return f"{path}.{key}" if _PLAIN_PATH_SEGMENT.fullmatch(key) and len(key) <= 70 else f"{path}[{_shown(key)}]"


def _shown(text: str) -> str:
    """Quote user text for a message: escaped, and cut short so that a message stays readable."""
    return repr(text if len(text) <= 70 else text[:67] + "...")


def _json_type(value: Any) -> str:
    names: dict[type, str] = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
