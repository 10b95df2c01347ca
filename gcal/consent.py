"""Pending consents: the single-use ``state`` of each OAuth consent in flight.

    consents = ConsentStates(redis, keys, cipher, ttl=600)
    request = await consents.begin("user-42", return_to=None)   # state + PKCE challenge
    url = oauth.consent_url(state=request.state, code_challenge=request.code_challenge)
    pending = await consents.consume(state_from_callback)      # None: unknown, used or expired

``state`` is 256 random bits. Redis keeps, under the state's SHA-256 (so Redis never holds a
usable state), the user id, the PKCE verifier and ``return_to``, sealed with the token
cipher, for ``ttl`` seconds. Consuming is GETDEL: a replayed callback finds nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass

from redis.asyncio import Redis

from gcal.crypto import Cipher
from gcal.errors import GcalError
from gcal.keys import RedisKeys
from gcal.oauth import new_pkce, new_state

log = logging.getLogger(__name__)

_PURPOSE = "oauth_state"


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """A consent just begun: what goes into the consent URL."""

    state: str
    code_challenge: str
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class PendingConsent:
    """What a state was bound to when its consent began."""

    user_id: str
    verifier: str
    return_to: str | None


def state_digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


class ConsentStates:
    """Single-use consent states in Redis, each bound to a user, a verifier and a return_to."""

    def __init__(self, redis: Redis, keys: RedisKeys, cipher: Cipher, *, ttl: int) -> None:
        self._redis = redis
        self._keys = keys
        self._cipher = cipher
        self.ttl = ttl

    async def begin(self, user_id: str, *, return_to: str | None) -> ConsentRequest:
        state = new_state()
        verifier, challenge = new_pkce()
        digest = state_digest(state)
        sealed = self._cipher.seal(
            _PURPOSE, digest, {"user_id": user_id, "verifier": verifier, "return_to": return_to}
        )
        await self._redis.set(self._keys.oauth_state(digest), sealed, ex=self.ttl, nx=True)
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.ttl)
        return ConsentRequest(state=state, code_challenge=challenge, expires_at=expires_at)

    async def consume(self, state: str) -> PendingConsent | None:
        """The consent ``state`` belongs to, once; None if unknown, used or expired."""
        digest = state_digest(state)
        sealed = await self._redis.getdel(self._keys.oauth_state(digest))
        if sealed is None:
            return None
        try:
            value = self._cipher.open(_PURPOSE, digest, sealed)
        except GcalError:
            log.warning("oauth state record could not be opened")
            return None
        return PendingConsent(
            user_id=str(value["user_id"]),
            verifier=str(value["verifier"]),
            return_to=value.get("return_to"),
        )
