"""Reads of accounts and API tokens: every queryset starts from the account."""

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from elbia.accounts.models import Account, AccountScopedQuerySet, ApiToken, Invitation, Membership, User
from elbia.accounts.roles import Role
from elbia.audit.models import AuditEvent


def api_token_list(*, account: Account, user: User | None) -> AccountScopedQuerySet:
    """The API tokens ``user`` generated for ``account`` (every member's with ``user=None``: what owners see),
    newest first, with who made each."""
    tokens = ApiToken.objects.for_account(account)
    if user is not None:
        tokens = tokens.filter(user=user)
    return tokens.select_related("user").order_by("-created_at", "-id")


def account_contact_email(*, account: Account) -> str:
    """Where an account is reached (invoices are billed to it): the email of its first owner."""
    owners = account.memberships.filter(role=Role.OWNER).order_by("created_at", "id")
    return owners.values_list("user__email", flat=True).first() or ""


def member_list(*, account: Account) -> QuerySet[Membership]:
    """The account's members with their users and how many active tokens each holds on it, oldest first."""
    active = Q(user__api_tokens__account=account, user__api_tokens__revoked_at__isnull=True)
    return (
        Membership.objects.filter(account=account)
        .select_related("user")
        .annotate(active_tokens=Count("user__api_tokens", filter=active))
        .order_by("created_at", "id")
    )


def pending_invitations(*, account: Account) -> AccountScopedQuerySet:
    """The account's invitations that can still be accepted, newest first, with who sent each."""
    return (
        Invitation.objects.for_account(account)
        .filter(accepted_at__isnull=True, cancelled_at__isnull=True, expires_at__gt=timezone.now())
        .select_related("invited_by")
    )


#: The audit actions the Activity page shows: who joined, was invited, changed role or left, and tokens ended.
TEAM_ACTIONS = {
    "invitation.create": "Invited",
    "invitation.accept": "Invitation accepted",
    "invitation.cancel": "Invitation cancelled",
    "membership.create": "Joined",
    "membership.update": "Role changed",
    "membership.delete": "Removed",
    "apitoken.narrow": "Token narrowed to a new role",
    "apitoken.revoke": "Token revoked",
}


def team_events(*, account: Account, actor_user_id: int | None = None, action: str | None = None):
    """The account's team audit events, newest first; by one member (who acted) and one action if given."""
    events = AuditEvent.objects.for_account(account).filter(action__in=TEAM_ACTIONS)
    if actor_user_id:
        events = events.filter(actor_user_id=actor_user_id)
    if action:
        events = events.filter(action=action)
    return events.order_by("-created_at", "-id")
