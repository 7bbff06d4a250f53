"""The HTTP client: bearer tokens renewed without the user noticing, the API's errors, pages through links."""

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx

from elbia_cli import __version__
from elbia_cli.config import Config, ConfigStore, Context, rfc3339
from elbia_cli.errors import ApiError, AuthError, CliError

TIMEOUT = httpx.Timeout(30.0, connect=10.0)
# 429 and 503 carry Retry-After: a read (or a write with an idempotency key) is retried this often...
RETRIES = 3
# ... when the wait asked for is no longer than this (seconds); otherwise the error is shown.
MAX_RETRY_AFTER = 30


def user_agent() -> str:
    return f"elbia-cli/{__version__} httpx/{httpx.__version__}"


def invalid_token(response: httpx.Response) -> bool:
    """A 401 whose challenge says the token presented was refused (RFC 6750 ``error="invalid_token"``)."""
    challenge = response.headers.get("WWW-Authenticate", "")
    return response.status_code == 401 and 'error="invalid_token"' in challenge


def next_link(response: httpx.Response) -> str | None:
    """The ``rel="next"`` target of the response's RFC 8288 ``Link`` header, if any (offset or cursor alike)."""
    link = response.links.get("next")
    return link.get("url") if link else None


def same_origin(first: str, second: str) -> bool:
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def request_token(server: str, data: dict, debug: Callable[[str], None] | None = None) -> dict:
    """POST to the OAuth token endpoint; the token response, or an auth error saying why it was refused."""
    url = server.rstrip("/") + "/oauth/token/"
    try:
        response = httpx.post(url, data=data, timeout=TIMEOUT, headers={"User-Agent": user_agent()})
    except httpx.TransportError as exc:
        raise CliError(f"Cannot reach {server}: {exc}") from None
    if debug:
        debug(f"POST {url} -> {response.status_code}")
    if response.status_code == 200:
        return response.json()
    try:
        reason = response.json().get("error", "")
    except ValueError:
        reason = ""
    if response.status_code in (400, 401):
        raise AuthError(
            f"The server refused to renew the token ({reason or response.status_code}): "
            "sign in again with `elbia auth login`."
        )
    raise ApiError.from_response(response)


def renewed(context: Context, token: dict, now: datetime | None = None) -> Context:
    """The context holding the pair a token response gave (refresh tokens rotate: both change)."""
    now = now or datetime.now(UTC)
    expires_in = token.get("expires_in")
    return Context(
        server=context.server,
        access_token=token["access_token"],
        refresh_token=token.get("refresh_token") or context.refresh_token,
        client_id=context.client_id,
        expires_at=rfc3339(now + timedelta(seconds=int(expires_in))) if expires_in else None,
        scopes=token["scope"].split() if token.get("scope") else context.scopes,
        renewed_at=rfc3339(now),
    )


class Client:
    """Requests to one context's server with its token; renews the token near expiry or when refused as expired."""

    def __init__(self, store: ConfigStore, context_name: str | None = None, debug: bool = False):
        self.store = store
        self.debug = debug
        self.name, self.context = store.load().context(context_name)
        self.http = httpx.Client(
            timeout=TIMEOUT,
            headers={"User-Agent": user_agent(), "Accept": "application/json"},
            follow_redirects=False,
        )

    @property
    def server(self) -> str:
        return self.context.server.rstrip("/")

    def log(self, line: str) -> None:
        if self.debug:
            print(f"debug: {line}", file=sys.stderr)

    # --- tokens ---------------------------------------------------------------------------------

    def renew(self, stale_access_token: str) -> None:
        """Renew the token, once across every ``elbia`` process: under the config's lock, after re-reading it.

        If another process renewed while this one waited for the lock, the config already holds a new
        pair: use it. Presenting the old refresh token again would be refused, and would revoke the family.
        """
        with self.store.locked() as config:
            context = self._stored_context(config)
            if context.access_token == stale_access_token:
                if not context.refresh_token:
                    raise AuthError("The token has expired and there is no refresh token: run `elbia auth login`.")
                token = request_token(
                    context.server,
                    {
                        "grant_type": "refresh_token",
                        "refresh_token": context.refresh_token,
                        "client_id": context.client_id,
                    },
                    debug=self.log if self.debug else None,
                )
                context = renewed(context, token)
                config.contexts[self.name] = context
            else:
                self.log("token already renewed by another process")
        self.context = context

    def _stored_context(self, config: Config) -> Context:
        if self.name not in config.contexts:
            raise AuthError(f"Context '{self.name}' was signed out meanwhile.")
        return config.contexts[self.name]

    # --- requests -------------------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        if path_or_url.startswith(("http://", "https://")):
            if not same_origin(path_or_url, self.server):
                raise CliError(f"The server linked to another origin ({path_or_url}); not following it.")
            return path_or_url
        return self.server + path_or_url

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: dict | None = None,
        json=None,
        content: bytes | None = None,
        headers: dict | None = None,
        idempotency_key: bool = False,
    ) -> httpx.Response:
        """Send a request to the API, renewing the token when needed; an ``ApiError`` for any error answer."""
        url = self.url(path_or_url)
        headers = dict(headers or {})
        if idempotency_key:
            headers["Idempotency-Key"] = str(uuid.uuid4())  # the same on every retry of this request
        retryable = method == "GET" or idempotency_key
        # None, not {}: httpx would replace the query of a followed link by an empty one
        params = {key: value for key, value in (params or {}).items() if value is not None} or None
        if self.context.expires_soon():
            self.renew(self.context.access_token)
        renewed_once = False
        for attempt in range(RETRIES + 1):
            presented = self.context.access_token
            response = self._send(
                method, url, params, json, content, {**headers, "Authorization": f"Bearer {presented}"}
            )
            if invalid_token(response) and not renewed_once and self.context.refresh_token:
                renewed_once = True
                self.renew(presented)
                response = self._send(
                    method,
                    url,
                    params,
                    json,
                    content,
                    {**headers, "Authorization": f"Bearer {self.context.access_token}"},
                )
            wait = retry_after(response)
            if wait is None or not retryable or attempt == RETRIES:
                break
            self.log(f"{response.status_code}: retrying in {wait} s")
            time.sleep(wait)
        if response.is_error:
            raise ApiError.from_response(response)
        return response

    def _send(self, method, url, params, json, content, headers) -> httpx.Response:
        started = time.monotonic()
        try:
            response = self.http.request(method, url, params=params, json=json, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise CliError(f"Cannot reach {self.server}: {exc}") from None
        if self.debug:
            elapsed = (time.monotonic() - started) * 1000
            self.log(f"{method} {response.request.url} -> {response.status_code} ({elapsed:.0f} ms)")
        return response

    def get(self, path: str, **params):
        return self.request("GET", path, params=params).json()

    def pages(self, path: str, params: dict | None = None, follow: bool = True) -> Iterator[tuple[list, str | None]]:
        """Each page of a list and the ``next`` link after it, following ``rel="next"`` links while ``follow``."""
        response = self.request("GET", path, params=params)
        while True:
            link = next_link(response)
            yield response.json(), link
            if not (follow and link):
                return
            response = self.request("GET", link)

    def download(self, url: str) -> httpx.Response:
        """GET a signed link without the bearer token (it may point anywhere the API chose)."""
        try:
            response = self.http.get(url, headers={"Accept": "*/*"})
        except httpx.TransportError as exc:
            raise CliError(f"Cannot download {url}: {exc}") from None
        self.log(f"GET <signed link> -> {response.status_code}")
        if response.is_error:
            raise ApiError(response.status_code, f"Download failed: {response.status_code} {response.reason_phrase}")
        return response


def retry_after(response: httpx.Response) -> int | None:
    """Seconds to wait before retrying a 429 or 503 that says so (within MAX_RETRY_AFTER), else None."""
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("Retry-After", "")
    if not value.isdigit() or int(value) > MAX_RETRY_AFTER:
        return None
    return max(int(value), 1)
