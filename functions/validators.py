"""Validation shared by the Function model, the services and the API serializers (Django ValidationErrors).

Messages about environment variables name the variable, never its value: a value may be a secret,
and error bodies are shown to users, logged by clients and kept by proxies.
"""

import re

from django.core.exceptions import ValidationError

from functions.runtimes import CURRENT_RUNTIMES, RUNTIME_NAMES, RUNTIMES, runtime_name
from resources.validators import FUNCTION_MEMORY_MB, validate_function_memory_mb

NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")
MEMORY_MB = FUNCTION_MEMORY_MB
TIMEOUT_S = (1, 900)

SHA256_HEX = re.compile(r"[0-9a-f]{64}")

MAX_TAGS = 50
MAX_TAG_LENGTH = 64
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/=+@-]{0,63}")

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_ENV_NAME = 128
MAX_ENV_BYTES = 4096  # names and values together, in UTF-8, as AWS Lambda allows
# Set by the platform for every function (AWS Lambda's reserved environment variables).
RESERVED_ENV_NAMES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_REGION",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_RUNTIME_DIR",
        "LAMBDA_TASK_ROOT",
    }
)


def _quoted(value: str, limit: int = 64) -> str:
    """A user's value, shortened and with control characters escaped, for an error message."""
    return repr(value[:limit])


NAME_MESSAGE = (
    "Function names are 1-64 lowercase letters, digits and hyphens, and start and end with a letter "
    "or digit (like a DNS label), e.g. 'user-authentication'."
)


def validate_name(value: str) -> None:
    """1-64 lowercase letters, digits and hyphens, starting and ending with a letter or digit (a DNS label)."""
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ValidationError(NAME_MESSAGE, code="invalid_name")


def validate_runtime(value: str) -> None:
    """A runtime from the catalog, by name or identifier (deprecated ones included: functions on them keep it)."""
    if value not in RUNTIME_NAMES:
        raise ValidationError(
            f"{_quoted(value)} is not a runtime; choose one of: {', '.join(CURRENT_RUNTIMES)}.", code="invalid_choice"
        )


def validate_current_runtime(value: str) -> None:
    """A runtime new functions may use: in the catalog and not deprecated."""
    validate_runtime(value)
    value = runtime_name(value)
    if RUNTIMES[value].deprecated:
        raise ValidationError(
            f"{value} is deprecated: new functions cannot use it. Choose one of: {', '.join(CURRENT_RUNTIMES)}.",
            code="deprecated",
        )


def validate_handler(handler: str, runtime: str) -> None:
    """The handler has the format ``runtime`` expects (``index.handler`` for Node.js, and so on)."""
    kind = RUNTIMES.get(runtime_name(runtime))
    if kind is None:
        return  # the runtime is reported on its own
    if not kind.handler_is_valid(handler):
        raise ValidationError(
            f"{_quoted(handler)} is not a valid handler for {kind.name}: expected {kind.handler_format}, "
            f"e.g. '{kind.handler_example}'.",
            code="invalid_handler",
        )


def _validate_int_range(value, low: int, high: int, unit: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"Ensure this value is an integer from {low} to {high} ({unit}).", code="out_of_range")


validate_memory_mb = validate_function_memory_mb


def validate_timeout_s(value: int) -> None:
    """Timeout in seconds, 1 to 900 (AWS Lambda's range)."""
    _validate_int_range(value, *TIMEOUT_S, "seconds")


def validate_tags(value) -> None:
    """A list of at most 50 distinct tags, each 1-64 letters, digits or ``_ . : / = + @ -``, starting alphanumeric."""
    if not isinstance(value, list):
        raise ValidationError("Tags must be a JSON list of strings.", code="invalid_tags")
    if len(value) > MAX_TAGS:
        raise ValidationError(f"At most {MAX_TAGS} tags are allowed.", code="max_length")
    for tag in value:
        if not isinstance(tag, str):
            raise ValidationError("Each tag must be a string.", code="invalid_tags")
        if not TAG.fullmatch(tag):
            raise ValidationError(
                f"Tag {_quoted(tag)} is invalid: tags are 1-{MAX_TAG_LENGTH} letters, digits or _ . : / = + @ -, "
                "starting with a letter or digit.",
                code="invalid_tags",
            )
    if len(set(value)) != len(value):
        raise ValidationError("Tags must not repeat.", code="invalid_tags")


def validate_tag(value: str) -> None:
    """One tag (as the list filter takes it)."""
    if not TAG.fullmatch(value):
        raise ValidationError(f"Tag {_quoted(value)} is invalid.", code="invalid_tag")


def validate_code_sha256(value: str) -> None:
    """A code archive's sha256: 64 lowercase hex digits."""
    if not isinstance(value, str) or not SHA256_HEX.fullmatch(value):
        raise ValidationError("A code hash is a sha256 in 64 lowercase hex digits.", code="invalid")


def validate_environment_name(name) -> None:
    """A variable name: a letter or underscore, then letters, digits or underscores; not reserved by the platform."""
    if not isinstance(name, str) or len(name) > MAX_ENV_NAME or not ENV_NAME.fullmatch(name):
        shown = _quoted(name) if isinstance(name, str) else "A variable name"
        raise ValidationError(
            f"{shown} is not a valid variable name: use at most {MAX_ENV_NAME} letters, digits and underscores, "
            "not starting with a digit.",
            code="invalid_environment",
        )
    if name in RESERVED_ENV_NAMES:
        raise ValidationError(f"{name} is reserved: the platform sets it for every function.", code="reserved")


def validate_environment(value) -> None:
    """Environment variables: a JSON object of names to string values, at most 4 KB in all; no NUL characters.

    Messages name variables, never show their values.
    """
    if not isinstance(value, dict):
        raise ValidationError(
            "Environment must be a JSON object of variable names to string values.", code="invalid_environment"
        )
    size = 0
    for name, variable in value.items():
        validate_environment_name(name)
        if not isinstance(variable, str):
            raise ValidationError(f"The value of {name} must be a string.", code="invalid_environment")
        if "\x00" in variable:
            raise ValidationError(f"The value of {name} must not contain NUL characters.", code="invalid_environment")
        try:
            size += len(name) + len(variable.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate ("\ud800"): not text PostgreSQL can store
            raise ValidationError(
                f"The value of {name} must be valid Unicode text.", code="invalid_environment"
            ) from None
    if size > MAX_ENV_BYTES:
        raise ValidationError(
            f"Environment variables may take at most {MAX_ENV_BYTES} bytes in all (names and values, UTF-8).",
            code="max_length",
        )


def validate_environment_patch(value) -> None:
    """A PATCH's environment: a JSON object of names to string values (set) or ``null`` (remove)."""
    if not isinstance(value, dict):
        raise ValidationError(
            "Environment must be a JSON object of variable names to string values (or null to remove one).",
            code="invalid_environment",
        )
    for name in value:
        validate_environment_name(name)
    validate_environment({name: variable for name, variable in value.items() if variable is not None})


# What the OpenAPI document says each validator accepts (elbia.api.schema reads ``json_schema``).
validate_name.json_schema = {"pattern": f"^{NAME.pattern}$", "maxLength": 64}
validate_current_runtime.json_schema = {
    "enum": [*CURRENT_RUNTIMES, *(RUNTIMES[name].identifier for name in CURRENT_RUNTIMES)]
}
validate_timeout_s.json_schema = {"minimum": TIMEOUT_S[0], "maximum": TIMEOUT_S[1]}
validate_tags.json_schema = {
    "type": "array",
    "maxItems": MAX_TAGS,
    "uniqueItems": True,
    "items": {"type": "string", "pattern": f"^{TAG.pattern}$"},
}
_ENVIRONMENT_NAMES = (
    "Names: a letter or underscore, then letters, digits or underscores (at most 128), not one the platform "
    "reserves (AWS_REGION, ...); at most 4 KB in all."
)
validate_environment.json_schema = {
    "type": "object",
    "additionalProperties": {"type": "string"},
    "description": f"Variable names to string values (write-only). {_ENVIRONMENT_NAMES}",
}
validate_environment_patch.json_schema = {
    "type": "object",
    "additionalProperties": {"type": "string", "nullable": True},
    "description": "A merge patch: a string sets a variable, null removes it, unnamed variables stay. "
    + _ENVIRONMENT_NAMES,
}
