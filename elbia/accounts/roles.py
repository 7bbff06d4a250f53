"""The roles a member holds in an account, and what each allows: declared here once.

``ROLE_SCOPES`` is the one table of what a role may do. API scopes and dashboard rights share it: a
token's scopes are limited to its creator's role on every request (``elbia.api.authentication``), the
token forms offer only the role's scopes, and each dashboard page names the right it needs in
``PAGE_RIGHTS`` (``elbia.pages.dashboard_page`` checks it). Rights that are not API scopes
(``members:manage``, ``tokens:manage``) are the dashboard's only.
"""

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    DEVELOPER = "developer", "Developer"
    BILLING = "billing", "Billing"
    VIEWER = "viewer", "Viewer"


#: Dashboard-only rights: inviting, changing and removing members; seeing and revoking every token.
MEMBERS_MANAGE = "members:manage"
TOKENS_MANAGE = "tokens:manage"

_READ = frozenset({"resources:read", "functions:read"})

ROLE_SCOPES: dict[str, frozenset[str]] = {
    # Everything, including members, every token of the account and billing.
    Role.OWNER: frozenset(settings.SCOPES) | {MEMBERS_MANAGE, TOKENS_MANAGE},
    # Resources and functions (every scope of theirs, present and future) and their own tokens.
    Role.DEVELOPER: frozenset(name for name in settings.SCOPES if name.split(":")[0] in ("resources", "functions")),
    # Usage and invoices; read-only elsewhere.
    Role.BILLING: _READ | {"billing:read"},
    # Read-only: resources and functions.
    Role.VIEWER: _READ,
}

ROLE_DESCRIPTIONS = {
    Role.OWNER: "Everything, including members, every token of the account, usage and invoices.",
    Role.DEVELOPER: "Resources, functions and their own API tokens.",
    Role.BILLING: "Usage and invoices; read-only elsewhere.",
    Role.VIEWER: "Read-only: resources and functions.",
}


def role_allows(role: str | None, right: str) -> bool:
    """Whether ``role`` grants ``right`` (an API scope or a dashboard right); no role grants nothing."""
    return right in ROLE_SCOPES.get(role, frozenset())


def role_scopes(role: str | None) -> list[str]:
    """The API scopes ``role`` may hold, in the order of settings.SCOPES."""
    allowed = ROLE_SCOPES.get(role, frozenset())
    return [name for name in settings.SCOPES if name in allowed]


def refusal(role: str, right: str) -> str:
    """The sentence a member reads when their role does not allow something."""
    return f"Your role in this account ({Role(role).label.lower()}) does not allow this: it needs '{right}'."


#: The right each dashboard page needs (``namespace:name`` of its URL); ``None``: any member may open it.
#: A page missing here is refused (tests/accounts/test_roles.py fails on it first).
PAGE_RIGHTS: dict[str, str | None] = {
    "dashboard:home": None,
    "dashboard:switch-account": None,
    "dashboard:settings": None,
    "dashboard:resend-verification": None,
    "dashboard:members": MEMBERS_MANAGE,
    "dashboard:activity": MEMBERS_MANAGE,
    "dashboard:member-invite": MEMBERS_MANAGE,
    "dashboard:invitation-cancel": MEMBERS_MANAGE,
    "dashboard:member-role": MEMBERS_MANAGE,
    "dashboard:member-remove": MEMBERS_MANAGE,
    "dashboard:tokens": None,
    "dashboard:token-create": None,
    "dashboard:token-revoke": None,
    "resources:list": "resources:read",
    "resources:detail": "resources:read",
    "resources:lifecycle": "resources:read",
    "resources:create": "resources:write",
    "resources:create-vpc": "resources:write",
    "resources:edit": "resources:write",
    "resources:delete": "resources:write",
    "resources:retry": "resources:write",
    "functions:list": "functions:read",
    "functions:detail": "functions:read",
    "functions:lifecycle": "functions:read",
    "functions:create": "functions:write",
    "functions:edit": "functions:write",
    "functions:upload_code": "functions:write",
    "functions:invoke": "functions:invoke",
    "functions:deprecate": "functions:write",
    "functions:delete": "functions:write",
    "functions:retry": "functions:write",
    "billing:usage": "billing:read",
    "billing:invoices": "billing:read",
    "billing:invoice": "billing:read",
}
