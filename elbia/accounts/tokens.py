"""Token strings: opaque, random, and prefixed ``elb_`` so secret scanners recognise leaked ones."""

import secrets

ACCESS_TOKEN_PREFIX = "elb_at_"
REFRESH_TOKEN_PREFIX = "elb_rt_"


def generate_access_token(request=None, refresh_token: bool = False) -> str:
    """OAuth access token generator (``OAUTH2_PROVIDER['ACCESS_TOKEN_GENERATOR']``)."""
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def generate_refresh_token(request=None, refresh_token: bool = False) -> str:
    """OAuth refresh token generator (``OAUTH2_PROVIDER['REFRESH_TOKEN_GENERATOR']``)."""
    return REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)


# The built-in public OAuth client that issues Elbia API tokens and renews them.
CLI_APPLICATION = {
    "name": "Elbia API tokens",
    "client_type": "public",
    "authorization_grant_type": "authorization-code",
    "client_secret": "",
    "hash_client_secret": False,
    "redirect_uris": "",
    "skip_authorization": False,
}
