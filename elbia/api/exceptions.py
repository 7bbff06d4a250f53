"""The API's own error types; elbia.api.errors renders every error in the contract's shape."""

from rest_framework import status
from rest_framework.exceptions import APIException


class InvalidParameter(APIException):
    """A query parameter (limit, offset, filter, expand, ordering, ...) is out of range or malformed."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid_parameter"
    default_detail = "A query parameter is invalid."


class InsufficientScope(APIException):
    """The token is valid but lacks the scope the endpoint requires."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "insufficient_scope"

    def __init__(self, scope: str, *, role: str = ""):
        """``role``: the token holds ``scope`` but its creator's current role in the account does not allow it."""
        self.scope = scope
        detail = f"This request requires the '{scope}' scope."
        if role:
            detail = (
                f"This request requires the '{scope}' scope, which the token's creator's role ({role}) does not allow."
            )
        super().__init__(detail)


class IdempotencyConflict(APIException):
    """A request with the same Idempotency-Key is still being processed."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "idempotency_conflict"
    default_detail = "A request with this Idempotency-Key is still being processed; retry once it has finished."


class IdempotencyKeyReused(APIException):
    """The Idempotency-Key was already used for a different request."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency_key_reused"
    default_detail = "This Idempotency-Key was already used with a different request; use a new key."


class PayloadTooLarge(APIException):
    """The request body is larger than the endpoint takes (checked before it is read, when Content-Length says so)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"
    default_detail = "Request body is too large."


class UnsupportedBodyType(APIException):
    """A body-carrying endpoint that is not JSON got another media type (the contract's 415)."""

    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_code = "unsupported_media_type"
    default_detail = "Unsupported media type in request."
