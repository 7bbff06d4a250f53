"""Exit codes and the errors that carry them to the user."""

from enum import IntEnum

import httpx


class ExitCode(IntEnum):
    """What ``elbia``'s exit status means (the README's table)."""

    OK = 0
    FAILURE = 1  # the thing asked failed: a resource failed, a function raised, a server error, no connection
    USAGE = 2  # the command line, or the input it carried, was refused (Click's own usage errors are 2 too)
    AUTH = 3  # not signed in, token refused and not renewable, or a scope missing
    NOT_FOUND = 4  # no such object (or another account's)


def exit_code_for_status(status: int) -> ExitCode:
    """The exit code of an API error status."""
    if status in (401, 403):
        return ExitCode.AUTH
    if status in (404, 410):
        return ExitCode.NOT_FOUND
    if status in (400, 413, 422):
        return ExitCode.USAGE
    return ExitCode.FAILURE


class CliError(Exception):
    """An error to print (one line, plus optional detail lines) and exit with."""

    def __init__(self, message: str, exit_code: ExitCode = ExitCode.FAILURE, details: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.details = details or []

    def document(self) -> dict:
        """The error as JSON for ``--output json``."""
        return {"error": {"message": self.message, "details": self.details}}


class AuthError(CliError):
    def __init__(self, message: str):
        super().__init__(message, ExitCode.AUTH)


class ApiError(CliError):
    """An error answered by the API, in the contract's envelope (or whatever a proxy sent instead)."""

    def __init__(self, status: int, message: str, *, code: str = "", request_id: str = "", body=None, details=None):
        super().__init__(message, exit_code_for_status(status), details=_detail_lines(details))
        self.status = status
        self.code = code
        self.request_id = request_id
        self.body = body

    @classmethod
    def from_response(cls, response: httpx.Response) -> "ApiError":
        request_id = response.headers.get("X-Request-ID", "")
        try:
            body = response.json()
        except ValueError:
            body = None
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return cls(
                response.status_code,
                str(error.get("message") or response.reason_phrase),
                code=str(error.get("code", "")),
                request_id=str(error.get("request_id") or request_id),
                body=body,
                details=error.get("details"),
            )
        return cls(response.status_code, f"{response.status_code} {response.reason_phrase}", request_id=request_id)

    def document(self) -> dict:
        if self.body is not None:
            return self.body
        return {"error": {"status": self.status, "message": self.message, "request_id": self.request_id or None}}


def _detail_lines(details) -> list[str]:
    """``{"region": ["'mars-1' is not a valid region."]}`` -> ``["region: 'mars-1' is not a valid region."]``."""
    if isinstance(details, dict):
        lines = []
        for field, value in details.items():
            messages = value if isinstance(value, list) else [value]
            lines.append(f"{field}: {' '.join(str(message) for message in messages)}")
        return lines
    if isinstance(details, list):
        return [str(item) for item in details]
    return []
