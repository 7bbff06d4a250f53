"""The /v1 request-body parser: strict JSON that cannot crash the server or reach the database unstorable.

Refused with ``400 invalid_request`` (``details.body`` says why), before any view code runs:

* malformed JSON, ``NaN``/``Infinity`` and numbers that overflow to infinity (``1e999``);
* integers of more than ``MAX_INT_DIGITS`` digits, with a plain message (rather than Python's 4,300-digit
  conversion error and its advice to call ``sys.set_int_max_str_digits``); shorter integers beyond 64 bits
  reach the fields, whose bounds refuse them naming the field in ``details`` (every /v1 integer input field
  has both bounds; ``elbia.api.json_filter`` keeps filter integers within 64 bits);
* nesting deeper than ``MAX_DEPTH`` arrays/objects (a ``[[[[...]]]]`` body would otherwise exhaust the
  interpreter's recursion limit, in the parser or in whatever walks the data afterwards).

NUL characters and lone surrogates inside strings are left to the fields that read them (they answer 400 with
the field's name); bodies above ``DATA_UPLOAD_MAX_MEMORY_SIZE`` are a ``413`` before parsing.

``RawBodyParser`` serves the endpoints whose body is a file (a function's ZIP archive): the bytes are read
from the stream up to the endpoint's own limit (not ``DATA_UPLOAD_MAX_MEMORY_SIZE``) and filed under one field
name, so validation errors and the audit trail name that field as they would in a JSON body.
"""

import codecs
import io
import json

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.settings import api_settings

from elbia.api.exceptions import PayloadTooLarge

MAX_DEPTH = 32
MAX_INT_DIGITS = 100


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise ValueError(f"Integer too long: more than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"Number out of range: {text[:40]}")
    return value


def _parse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def nesting_depth_exceeds(data, limit: int = MAX_DEPTH) -> bool:
    """Whether ``data`` holds arrays/objects nested more than ``limit`` deep (iterative: safe at any depth)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with the refusals above."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            data = json.load(
                codecs.getreader(encoding)(stream),
                parse_int=_parse_int,
                parse_float=_parse_float,
                parse_constant=_parse_constant if api_settings.STRICT_JSON else None,
            )
        except RecursionError:
            raise ParseError(f"JSON parse error - nesting deeper than {MAX_DEPTH} levels") from None
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise ParseError(f"JSON parse error - {exc}") from None
        if nesting_depth_exceeds(data):
            raise ParseError(f"JSON parse error - nesting deeper than {MAX_DEPTH} levels")
        return data


def read_limited(stream, *, declared_length, limit: int) -> bytes:
    """At most ``limit`` bytes of ``stream``: ``PayloadTooLarge`` (413) when the request's ``Content-Length``
    (``declared_length``, as sent) says more, before anything is read, or when the body turns out longer (a
    body without one, or understating it, is read one byte past the limit at most)."""
    try:
        declared = int(declared_length or 0)
    except ValueError:  # not a number: the stream's own length decides
        declared = 0
    if declared <= limit:
        data = stream.read(limit + 1) if stream is not None else b""
        if len(data) <= limit:
            return data
    raise PayloadTooLarge(f"Request body is too large: at most {limit:,} bytes are accepted here.")


class RawBodyParser(parsers.BaseParser):
    """A body of ``media_type`` taken as it is, at most ``max_bytes``: ``{field: bytes}``; a 413 beyond.

    Subclass with ``media_type``, ``field`` and ``max_bytes``.
    """

    field: str
    max_bytes: int

    def parse(self, stream, media_type=None, parser_context=None):
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        return {self.field: read_limited(stream, declared_length=declared, limit=self.max_bytes)}


def read_body(request, limit: int) -> bytes:
    """The raw body of a DRF ``request`` of at most ``limit`` bytes: ``PayloadTooLarge`` (413) beyond.

    For the few views that take bodies above ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (a function's event): the
    body is read once and kept where Django keeps it, so the parser and the idempotency fingerprint read it
    from there instead of refusing it for its size.
    """
    django_request = request._request
    if not hasattr(django_request, "_body"):
        body = read_limited(django_request, declared_length=django_request.META.get("CONTENT_LENGTH"), limit=limit)
        django_request._body = body
        django_request._stream = io.BytesIO(body)
    return django_request._body
