"""The query parameters of ``GET /v1/functions``: ``status``, ``runtime``, ``tag`` and ``ordering``.

Every value is checked before it reaches the selector; a bad one is a ``400 invalid_parameter`` naming
the parameter (an unknown status or runtime is an error, not an empty list).
"""

from typing import Any

from django.core.exceptions import ValidationError

from elbia.api.exceptions import InvalidParameter
from elbia.api.views import parse_choice
from functions.models import FunctionStatus
from functions.runtimes import RUNTIMES
from functions.validators import MAX_TAG_LENGTH, validate_tag
from resources.selectors import DEFAULT_ORDERING, ORDERINGS


def _tag(params) -> str | None:
    tag = params.get("tag")
    if tag is None:
        return None
    try:
        validate_tag(tag)
    except ValidationError:
        raise InvalidParameter(
            f"Parameter 'tag' must be a tag: 1-{MAX_TAG_LENGTH} letters, digits or _ . : / = + @ -, "
            "starting with a letter or digit."
        ) from None
    return tag


def function_list_params(params) -> dict[str, Any]:
    """The keyword arguments of ``functions.selectors.function_list`` for these query parameters."""
    return {
        "status": parse_choice(params, "status", tuple(FunctionStatus.values)),
        "runtime": parse_choice(params, "runtime", tuple(RUNTIMES)),
        "tag": _tag(params),
        "ordering": parse_choice(params, "ordering", tuple(ORDERINGS), default=DEFAULT_ORDERING),
    }


LIST_PARAMETERS = [
    (
        "status",
        "Only functions in this status: "
        + ", ".join(FunctionStatus.values)
        + ". Deleted functions are listed only when asked for.",
    ),
    ("runtime", 'Only functions on this runtime, e.g. "Node.js 20" (see GET /v1/runtimes).'),
    ("tag", "Only functions that have this tag among theirs (a function group identifier)."),
    ("ordering", "created_at or -created_at (default); ties are broken by id."),
]
