"""Recording audit events. Recording never breaks or fails the action it records."""

import ipaddress
import logging
from collections.abc import Iterable

from django.db import DatabaseError, transaction

from elbia.accounts.models import Account
from elbia.api.authentication import TokenContext
from elbia.api.throttling import client_address
from elbia.audit.models import ActorType, AuditEvent

logger = logging.getLogger(__name__)


def _valid_ip(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def _actor(request) -> tuple[str, int | None, str]:
    """Actor type, user id and label of whoever made ``request`` (the system when there is none).

    A token request's user is known from the token (no query: ``request.user`` is not loaded).
    """
    auth = getattr(request, "auth", None)
    user = getattr(request, "user", None)
    if isinstance(auth, TokenContext):
        return ActorType.TOKEN, auth.user_id or user.pk, f"token '{auth.api_token_name}' of {user.username}"
    if user is not None and user.is_authenticated:
        return (ActorType.STAFF if user.is_staff else ActorType.USER), user.pk, user.username
    return ActorType.SYSTEM, None, "system"


def audit_record(
    *,
    action: str,
    request=None,
    account: Account | None = None,
    obj=None,
    object_id: str = "",
    changed_fields: Iterable[str] = (),
    within_write: bool = False,
) -> AuditEvent | None:
    """Record that ``action`` was taken on ``obj`` (or ``object_id``) by whoever made ``request``.

    After the action (the default), a failure to record is logged, never raised: the action itself already
    happened. ``within_write``: the event is written in the action's own transaction (an API creation), so
    the two commit together; a failure to record raises and the action is rolled back with it.
    """
    actor_type, user_id, label = _actor(request)
    if obj is not None:
        object_id = object_id or getattr(obj, "public_id", "") or str(obj.pk)
        account = account or getattr(obj, "account", None)
    if account is None and user_id is not None:  # the account the page acts on, else the user's own
        account = getattr(request, "account", None) or getattr(getattr(request, "user", None), "account", None)
    event = AuditEvent(
        account=account,
        actor_type=actor_type,
        actor_user_id=user_id,
        actor=label[:200],
        action=action,
        object_type=type(obj).__name__.lower() if obj is not None else action.split(".", 1)[0],
        object_id=object_id[:64],
        changed_fields=sorted(set(changed_fields)),
        ip_address=_valid_ip(client_address(request)) if request is not None else None,
        request_id=getattr(request, "request_id", ""),
    )
    if within_write:
        event.save()
        return event
    try:
        with transaction.atomic():
            event.save()
    except DatabaseError:
        logger.exception("Could not record audit event %s for %s", action, object_id)
        return None
    return event
