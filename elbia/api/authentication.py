"""Bearer-token authentication for /v1: django-oauth-toolkit tokens, looked up by their hash.

The lookup costs one indexed query (the access token, its user, its refresh token's family, the named
``ApiToken``, the account it acts on and its creator's membership there, joined), or none: a validated
token is kept for a few seconds in a cache every web process shares (Redis), and a request whose token
is there pays one Redis round trip for its lookup *and* its rate-limit charge (one Lua script). The
user is not loaded: ``request.user`` is a lazy object that knows its id and name and reads the row
only if a page needs more.

A token acts with its own scopes limited to its creator's current role (``elbia.accounts.roles``),
the role coming with the same query (and cache entry); a token whose creator is no longer a member of
its account is unknown (401). Whatever changes a role forgets the member's cached tokens.

Every way a token ends must drop it from the cache at once, across processes: see
``elbia.accounts.token_cache`` (``forget_token``, ``forget_family``, ``forget_user_tokens``).

The bad-token budget of a client IP is only looked at for tokens the cache does not know.
"""

import hashlib
import ipaddress
import json
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django.utils.functional import SimpleLazyObject
from oauth2_provider.models import AccessToken, RefreshToken
from redis.exceptions import RedisError
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from elbia.accounts.models import Account, ApiToken, Membership
from elbia.accounts.roles import ROLE_SCOPES
from elbia.accounts.token_cache import CACHE_SECONDS, ENTRY_PREFIX, FORGOTTEN_PREFIX, local_tokens
from elbia.api import throttling
from elbia.api.throttling import check_bad_token_budget, client_address, record_bad_token

# last_used_at is a hint for people, not an audit record: write it at most this often.
LAST_USED_RESOLUTION = timedelta(minutes=1)

# KEYS[1] = the token's entry. ARGV[1] = FORGOTTEN_PREFIX. A valid entry is returned with its budget
# charged (fields k, l, p: budget key, limit, period in ms): {entry, allowed, count, ms left}.
AUTH_LUA = (
    throttling.WINDOW_LUA
    + """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local entry = cjson.decode(raw)
if redis.call('EXISTS', ARGV[1] .. entry.f) == 1 then return false end
local decision = charge(entry.k, tonumber(entry.l), tonumber(entry.p), true)
return {raw, decision[1], decision[2], decision[3]}
"""
)


@dataclass(frozen=True)
class TokenContext:
    """What a request's token grants: ``request.auth`` on every authenticated /v1 request."""

    account: Account
    scopes: frozenset[str]  # what the request may do: the token's scopes its creator's role allows
    access_token_id: int
    api_token_id: int | None
    api_token_name: str
    token_family: uuid.UUID | None
    rate_limit: str
    user_id: int = 0
    username: str = ""
    role: str = ""
    token_scopes: frozenset[str] = frozenset()  # the token's own scopes, whatever the role


class TokenUser(SimpleLazyObject):
    """``request.user`` of a token request: its id and username without a query; the row on first other use."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, user_id: int, username: str):
        super().__init__(lambda: get_user_model().objects.get(pk=user_id))
        self.__dict__["_user_id"] = user_id
        self.__dict__["_username"] = username

    @property
    def pk(self) -> int:
        return self.__dict__["_user_id"]

    id = pk

    @property
    def username(self) -> str:
        return self.__dict__["_username"]


def _lookup_sql() -> str:
    """The one query: the token, its active user, the family, the named ApiToken, its account and the role there.

    The account is the named token's (a token without one acts on its user's own account); the creator
    must be a member of it.
    """
    q = connection.ops.quote_name
    access, refresh = AccessToken._meta.db_table, RefreshToken._meta.db_table
    users, accounts, api_tokens = get_user_model()._meta.db_table, Account._meta.db_table, ApiToken._meta.db_table
    members = Membership._meta.db_table
    columns = (
        f"t.{q('id')}, t.{q('expires')}, t.{q('scope')}, u.{q('id')}, u.{q('username')}, a.{q('id')}, "
        f"a.{q('name')}, a.{q('created_at')}, r.{q('token_family')}, k.{q('id')}, k.{q('name')}, "
        f"k.{q('rate_limit')}, k.{q('last_used_at')}, m.{q('role')}"
    )
    # Only the models' own table and column names are interpolated; the checksum is a parameter.
    return (
        f"SELECT {columns} "  # noqa: S608
        f"FROM {q(access)} t "
        f"JOIN {q(users)} u ON u.{q('id')} = t.{q('user_id')} AND u.{q('is_active')} "
        f"LEFT JOIN {q(refresh)} r ON r.{q('access_token_id')} = t.{q('id')} "
        f"LEFT JOIN {q(api_tokens)} k ON k.{q('token_family')} = r.{q('token_family')} "
        f"JOIN {q(accounts)} a ON a.{q('id')} = COALESCE(k.{q('account_id')}, u.{q('account_id')}) "
        f"JOIN {q(members)} m ON m.{q('user_id')} = u.{q('id')} AND m.{q('account_id')} = a.{q('id')} "
        f"WHERE t.{q('token_checksum')} = %s"
    )


def _epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def _moment(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, tz=UTC) if epoch is not None else None


def _family_key(family: str | None, access_token_id: int) -> str:
    return str(family) if family else f"at{access_token_id}"


def _token_rows(checksum: str):
    """The one indexed query of a token the cache does not know: its row, or ``None``."""
    with connection.cursor() as cursor:
        cursor.execute(_lookup_sql(), [checksum])
        return cursor.fetchone()


def _entry_from_database(checksum: str) -> dict | None:
    """The token's entry as the cache holds it, from one indexed query; ``None`` for an unusable token."""
    row = _token_rows(checksum)
    if row is None:
        return None
    token_id, expires, scope, user_id, username, account_id, account_name, account_created, family = row[:9]
    api_token_id, api_token_name, rate_limit, last_used, role = row[9:]
    family = str(family) if family else None
    named_family = family if api_token_id else None  # the budget and the context follow the named credential
    if isinstance(expires, str):  # SQLite through a raw cursor
        expires, account_created = datetime.fromisoformat(expires), datetime.fromisoformat(account_created)
        last_used = datetime.fromisoformat(last_used) if last_used else None
    if timezone.is_naive(expires):
        expires = timezone.make_aware(expires, UTC)
        account_created = timezone.make_aware(account_created, UTC)
        last_used = timezone.make_aware(last_used, UTC) if last_used else None
    budget, rate = throttling.token_budget(
        rate_limit=rate_limit or "", token_family=named_family, access_token_id=token_id
    )
    return {
        "t": token_id,
        "x": expires.timestamp(),
        "s": scope,
        "u": user_id,
        "un": username,
        "a": account_id,
        "an": account_name,
        "ac": account_created.timestamp(),
        "f": _family_key(family, token_id),
        "fam": named_family,
        "i": api_token_id,
        "n": api_token_name or "",
        "r": rate_limit or "",
        "lu": _epoch(last_used),
        "ro": role,
        "k": throttling.budget_key(budget, rate),
        "l": rate.limit,
        "p": rate.period * 1000,
    }


def _context(entry: dict) -> TokenContext:
    token_scopes = frozenset(entry["s"].split())
    return TokenContext(
        account=Account(id=entry["a"], name=entry["an"], created_at=_moment(entry["ac"])),
        scopes=token_scopes & ROLE_SCOPES[entry["ro"]],
        access_token_id=entry["t"],
        api_token_id=entry["i"],
        api_token_name=entry["n"],
        token_family=uuid.UUID(entry["fam"]) if entry["fam"] else None,
        rate_limit=entry["r"],
        user_id=entry["u"],
        username=entry["un"],
        role=entry["ro"],
        token_scopes=token_scopes,
    )


# --- the cache ---------------------------------------------------------------------------------------


def _cached(checksum: str, request) -> dict | None:
    """The cached entry of a token, its budget charged in the same round trip (then recorded on the request)."""
    client = throttling.shared_redis()
    if client is None:
        return local_tokens.get(checksum)
    try:
        found = throttling.run_script(client, AUTH_LUA, [ENTRY_PREFIX + checksum], [FORGOTTEN_PREFIX])
    except (RedisError, OSError) as exc:
        throttling.redis_failed(exc)
        return local_tokens.get(checksum)
    if not found:
        return None
    raw, allowed, count, ms_left = found
    entry = json.loads(raw)
    if entry.get("ro") not in ROLE_SCOPES:  # an entry from before roles: read the token again
        return None
    rate = throttling.Rate(limit=int(entry["l"]), period=int(entry["p"]) // 1000)
    throttling.record(request, throttling.decision_from_script(rate, allowed, count, ms_left))
    return entry


def _remember(checksum: str, entry: dict) -> None:
    seconds = min(CACHE_SECONDS, entry["x"] - timezone.now().timestamp())
    if seconds < 1:
        return
    client = throttling.shared_redis()
    if client is None:
        local_tokens.put(checksum, entry, seconds)
        return
    try:
        client.set(ENTRY_PREFIX + checksum, json.dumps(entry, separators=(",", ":")), ex=math.floor(seconds))
    except (RedisError, OSError) as exc:
        throttling.redis_failed(exc)


# --- DRF ---------------------------------------------------------------------------------------------


def bearer_token(request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; ``None`` without a header; 401 for any other scheme."""
    header = get_authorization_header(request)
    if not header:
        return None
    scheme, _, value = header.partition(b" ")
    value = value.strip()
    if scheme.lower() != b"bearer" or not value or b" " in value or len(value) > 512:
        raise AuthenticationFailed()
    try:
        return value.decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationFailed() from None


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <token>``; tokens in the query string are refused (RFC 9700)."""

    def authenticate(self, request):
        if "access_token" in request.query_params:
            raise AuthenticationFailed()
        token = bearer_token(request)
        if token is None:
            return None
        checksum = hashlib.sha256(token.encode("ascii")).hexdigest()
        entry = _cached(checksum, request)
        if entry is None or entry["x"] <= timezone.now().timestamp():
            check_bad_token_budget(request)  # an IP that sent too many bad tokens gets a 429 before any lookup
            entry = _entry_from_database(checksum)
            if entry is None or entry["x"] <= timezone.now().timestamp():
                record_bad_token(request)
                raise AuthenticationFailed()
            self._touch(request, checksum, entry)
            _remember(checksum, entry)
        else:
            self._touch(request, checksum, entry, cached=True)
        return TokenUser(entry["u"], entry["un"]), _context(entry)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="elbia"'

    @staticmethod
    def _touch(request, checksum: str, entry: dict, *, cached: bool = False) -> None:
        """Record when (and from which address) a named token was last used, at most once a minute."""
        now = timezone.now().timestamp()
        last_used = entry["lu"]
        if entry["i"] and (last_used is None or now - last_used >= LAST_USED_RESOLUTION.total_seconds()):
            address = client_address(request)
            try:
                address = str(ipaddress.ip_address(address))
            except ValueError:
                address = None
            ApiToken.objects.filter(id=entry["i"]).update(last_used_at=timezone.now(), last_used_ip=address)
            entry["lu"] = now
            if cached:
                _remember(checksum, entry)
