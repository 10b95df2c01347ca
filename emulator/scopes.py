"""The OAuth scope vocabulary the emulator's OAuth endpoints share.

The identity scopes (``openid`` and the userinfo scopes: they bring an ID token and cannot be
unticked on the consent page), Google's short-name aliases for them, and the two forms a
scope list takes on the wire: parsed from a request's ``scope`` parameter and written back as
one space-separated string.
"""

from __future__ import annotations

OPENID = "openid"
EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"
PROFILE_SCOPE = "https://www.googleapis.com/auth/userinfo.profile"
# Scopes that mean "who you are": they bring an id_token and cannot be unticked.
IDENTITY_SCOPES = frozenset({OPENID, EMAIL_SCOPE, PROFILE_SCOPE})
# Google grants the OIDC short names as the userinfo scopes (facts §1.2).
_SCOPE_ALIASES = {"email": EMAIL_SCOPE, "profile": PROFILE_SCOPE}


def parse_scopes(raw: str) -> tuple[str, ...]:
    """A ``scope`` parameter as a tuple: aliases expanded, duplicates removed, in order."""
    expanded = (_SCOPE_ALIASES.get(s, s) for s in raw.split())
    return tuple(dict.fromkeys(expanded))


def scope_string(scopes: frozenset[str]) -> str:
    """Scopes as the space-separated ``scope`` a redirect or token response carries."""
    return " ".join(sorted(scopes))
