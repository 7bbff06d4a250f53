"""The short-lived cache of validated API tokens, and the one way to invalidate it: ``forget_*``.

``elbia.api.authentication`` keeps each validated token here for ``CACHE_SECONDS`` (Redis, shared by
every web process; the lookup itself and the entry's format live there). Whatever ends or changes
what a token grants must forget it, at once and in every process:

- ``forget_token(checksum)``: one access token, by its ``token_checksum``. Called on every delete of
  an ``AccessToken`` (a post_delete receiver below): revocation of a family, refresh rotation (the old
  access token is deleted), ``/oauth/revoke_token/``, expiry sweeps, the admin.
- ``forget_family(token_family)``: a whole credential (``ApiToken.token_family``). Cached entries of
  the family are ignored for ``FORGOTTEN_SECONDS`` (longer than any entry lives), so the next request
  reads the database. ``token_revoke`` and ``token_set_rate_limit`` call it; so must anything that
  narrows a token (a changed role, a member removed).
- ``forget_user_tokens(user_id)``: ``forget_family`` for each credential of a user (a post_save
  receiver calls it when a user's ``is_active`` or ``account`` may have changed).

Each acts immediately and once more when the surrounding transaction commits, so no request can
refill the cache from the state before the change. Without Redis (the embedded defaults of
``make run``) the cache is this process's memory and an entry lives ``LOCAL_CACHE_SECONDS`` (1 s):
invalidation cannot reach the other processes, so the window must stay that short.

No Django REST framework here: services import this module.
"""

import logging
import threading
import time
import uuid

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_redis import get_redis_connection
from oauth2_provider.models import AccessToken
from redis.exceptions import RedisError

from elbia.accounts.models import ApiToken

logger = logging.getLogger(__name__)

# How long a validated token is trusted without the database (every revocation path forgets it at once).
CACHE_SECONDS = 10
# The same without Redis: a per-process cache that no other process can invalidate.
LOCAL_CACHE_SECONDS = 1
ENTRY_PREFIX = "elbia:tok:"
FORGOTTEN_PREFIX = "elbia:tokdead:"  # a family forgotten lately: its cached entries do not count
FORGOTTEN_SECONDS = 2 * CACHE_SECONDS + 5


class LocalTokens:
    """The validated-token cache without Redis: this process only, ``LOCAL_CACHE_SECONDS`` per entry."""

    MAX_ENTRIES = 10_000

    def __init__(self):
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, dict]] = {}

    def get(self, checksum: str) -> dict | None:
        with self._lock:
            deadline, entry = self._entries.get(checksum, (0.0, None))
            return entry if deadline > time.monotonic() else None

    def put(self, checksum: str, entry: dict, seconds: float) -> None:
        with self._lock:
            if len(self._entries) >= self.MAX_ENTRIES:
                self._entries.clear()
            self._entries[checksum] = (time.monotonic() + min(seconds, LOCAL_CACHE_SECONDS), entry)

    def forget(self, *, checksum: str | None = None, family: str | None = None) -> None:
        with self._lock:
            self._entries = {
                key: value
                for key, value in self._entries.items()
                if key != checksum and (family is None or value[1]["f"] != family)
            }

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


local_tokens = LocalTokens()


def _shared():
    """The raw Redis client of the cache, or ``None`` on the local-memory cache."""
    try:
        return get_redis_connection("default")
    except NotImplementedError:
        return None


def _now_and_on_commit(action) -> None:
    def guarded() -> None:
        local_tokens_action, redis_action = action
        local_tokens_action()
        client = _shared()
        if client is not None:
            try:
                redis_action(client)
            except (RedisError, OSError) as exc:  # entries then die by themselves within CACHE_SECONDS
                logger.warning("Could not invalidate cached API tokens in Redis: %s", exc)

    guarded()
    transaction.on_commit(guarded)  # again once the change is visible: no process can refill it from before


def forget_token(checksum: str) -> None:
    """Drop one access token (by its ``token_checksum``) from the validated-token cache, in every process."""
    _now_and_on_commit(
        (lambda: local_tokens.forget(checksum=checksum), lambda client: client.delete(ENTRY_PREFIX + checksum))
    )


def forget_family(token_family: uuid.UUID | str) -> None:
    """Stop trusting every cached token of a credential (its ``token_family``), at once, in every process."""
    family = str(token_family)
    _now_and_on_commit(
        (
            lambda: local_tokens.forget(family=family),
            lambda client: client.set(FORGOTTEN_PREFIX + family, 1, ex=FORGOTTEN_SECONDS),
        )
    )


def forget_user_tokens(user_id: int) -> None:
    """``forget_family`` for every credential of a user (deactivated, moved, role changed)."""
    for family in ApiToken.objects.filter(user_id=user_id).values_list("token_family", flat=True):
        forget_family(family)


@receiver(post_delete, sender=AccessToken)
def _access_token_deleted(sender, instance, **kwargs) -> None:
    """Revocation, refresh rotation and expiry sweeps all delete the access token: forget it everywhere."""
    if instance.token_checksum:
        forget_token(instance.token_checksum)


@receiver(post_save, sender=get_user_model())
def _user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    """A user saved may have been deactivated or moved: their tokens are read from the database again."""
    if not created and (update_fields is None or {"is_active", "account"} & set(update_fields)):
        forget_user_tokens(instance.pk)
