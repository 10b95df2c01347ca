"""The emulator's OpenID Connect ID tokens: the RS256 signer, its JWKS and the claims.

:class:`IdTokenSigner` holds an RSA key made for this emulator: it signs ID tokens and
publishes its public half as Google's ``/oauth2/v3/certs`` JWKS. :func:`id_claims` builds the
claims of the ID token issued beside an access token with identity scopes. Also here, the
two encodings they rest on, which the token endpoint shares: unpadded base64url and compact
JSON.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emulator.scopes import EMAIL_SCOPE, PROFILE_SCOPE
from emulator.state import AccessToken, Account, Store

_ID_TOKEN_TTL = 3600


class IdTokenSigner:
    """An RS256 key made for this emulator; signs ID tokens and publishes itself as JWKS."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self._key.public_key().public_numbers()
        self._n = b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
        self._e = b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))
        self.kid = hashlib.sha256(f"{self._n}.{self._e}".encode()).hexdigest()[:40]

    def jwks(self) -> dict[str, Any]:
        key = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid}
        return {"keys": [{**key, "n": self._n, "e": self._e}]}

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = ".".join(b64url(compact_json(part)) for part in (header, claims))
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"


def id_claims(
    store: Store, access: AccessToken, account: Account, nonce: str | None
) -> dict[str, Any]:
    """The claims of the ID token issued beside ``access`` (email and name as scoped)."""
    now = int(store.clock.now())
    digest = hashlib.sha256(access.token.encode()).digest()
    claims: dict[str, Any] = {
        # The emulator is its own issuer (Google: https://accounts.google.com).
        "iss": store.config.public_url,
        "azp": access.client_id,
        "aud": access.client_id,
        "sub": account.sub,
        "at_hash": b64url(digest[: len(digest) // 2]),  # OIDC Core §3.1.3.6
        "iat": now,
        "exp": now + _ID_TOKEN_TTL,
    }
    if EMAIL_SCOPE in access.scopes:
        claims |= {"email": account.email, "email_verified": True}
    if PROFILE_SCOPE in access.scopes:
        claims["name"] = account.name
    if nonce is not None:
        claims["nonce"] = nonce
    return claims


def compact_json(value: dict[str, Any]) -> bytes:
    """JSON without spaces, as Google writes JWT parts and token responses."""
    return json.dumps(value, separators=(",", ":")).encode()


def b64url(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 §2), as JWTs, JWKS and PKCE S256 use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
