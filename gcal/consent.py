"""Pending consents: the single-use ``state`` of each OAuth consent in flight, bound to the
user, the scopes asked for, a PKCE verifier, ``return_to``, and the browser that opened it.

    consents = ConsentStates(redis, keys, cipher, ttl=600)
    request = await consents.begin("user-42", scopes=scopes, return_to=None, login_hint=None)
    opened = await consents.bind(request.state)            # once, from the person's browser
    url = oauth.consent_url(
        state=request.state, code_challenge=opened.code_challenge, scopes=opened.scopes
    )
    pending = await consents.consume(state_from_callback)  # None: unknown, used or expired
    pending.opened_by(secret_from_the_browser_cookie)      # the same browser?
    pending.scopes                                         # what the grant must hold

``state`` is 256 random bits. Redis keeps, under the state's SHA-256 (so Redis never holds a
usable state), a hash with the user id, the scopes, the PKCE verifier, ``return_to`` and the
login hint, sealed with the token cipher, for ``ttl`` seconds. The consent URL asks for
exactly those scopes and the callback checks the grant against exactly them, whatever the
configuration says by then. Binding happens once: the first browser to
open the consent gets a random secret (kept by the browser in a cookie, in Redis only as its
SHA-256); a second opening finds the state bound and gets nothing. Consuming is one
transaction of HGETALL and DEL: a replayed callback finds nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from gcal.crypto import Cipher
from gcal.errors import GcalError
from gcal.keys import RedisKeys
from gcal.oauth import new_pkce, new_state, pkce_challenge

log = logging.getLogger(__name__)

_PURPOSE = "oauth_state"
_CONSENT = "consent"
_BROWSER = "browser"
# KEYS[1]: the state's hash. ARGV[1]: the digest of the browser's secret.
# {sealed consent, remaining ms} if this call bound the state; false if it is unknown,
# expired or already bound (HSETNX alone would create a missing key, without a TTL).
_BIND = """
if redis.call('EXISTS', KEYS[1]) == 0 then
    return false
end
if redis.call('HSETNX', KEYS[1], 'browser', ARGV[1]) == 0 then
    return false
end
return {redis.call('HGET', KEYS[1], 'consent'), redis.call('PTTL', KEYS[1])}
"""


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """A consent just begun: the state to hand to the person's browser."""

    state: str
    expires_at: dt.datetime


@dataclass(frozen=True, slots=True)
class OpenedConsent:
    """A consent just bound to a browser: its secret, and what the consent URL needs."""

    secret: str
    code_challenge: str
    scopes: tuple[str, ...] | None  # None: begun before scopes were kept (ask the required)
    login_hint: str | None
    expires_in: int  # seconds the state has left


@dataclass(frozen=True, slots=True)
class PendingConsent:
    """What a state was bound to when its consent began."""

    user_id: str
    scopes: tuple[str, ...] | None  # as asked; None: begun before scopes were kept
    verifier: str
    return_to: str | None
    browser: str | None  # SHA-256 of the secret of the browser that opened it, if one did

    def opened_by(self, secret: str | None) -> bool:
        """Whether ``secret`` is that of the browser that opened this consent."""
        if self.browser is None or not secret:
            return False
        return hmac.compare_digest(self.browser, _digest(secret))


def _scopes(value: dict[str, Any]) -> tuple[str, ...] | None:
    # A state begun by a version that did not keep scopes (a consent in flight across a
    # deploy, for at most the state's TTL) has none: the caller asks for the required ones.
    scopes = value.get("scopes")
    return tuple(str(scope) for scope in scopes) if isinstance(scopes, list) else None


def state_digest(state: str) -> str:
    return _digest(state)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class ConsentStates:
    """Single-use consent states in Redis, each bound to a user, a verifier, a return_to and,
    once opened, a browser."""

    def __init__(self, redis: Redis, keys: RedisKeys, cipher: Cipher, *, ttl: int) -> None:
        self._redis = redis
        self._keys = keys
        self._cipher = cipher
        self.ttl = ttl
        self._bind = redis.register_script(_BIND)

    async def begin(
        self,
        user_id: str,
        *,
        scopes: Iterable[str],
        return_to: str | None,
        login_hint: str | None = None,
    ) -> ConsentRequest:
        """A new consent for ``user_id`` asking for ``scopes`` (the grant must hold them)."""
        state = new_state()
        verifier, _ = new_pkce()
        digest = state_digest(state)
        sealed = self._cipher.seal(
            _PURPOSE,
            digest,
            {
                "user_id": user_id,
                "scopes": list(dict.fromkeys(scopes)),
                "verifier": verifier,
                "return_to": return_to,
                "login_hint": login_hint,
            },
        )
        key = self._keys.oauth_state(digest)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={_CONSENT: sealed})
            pipe.expire(key, self.ttl)
            await pipe.execute()
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.ttl)
        return ConsentRequest(state=state, expires_at=expires_at)

    async def bind(self, state: str) -> OpenedConsent | None:
        """Bind the consent to the browser opening it, once; None if the state is unknown,
        expired, or already opened (by this browser or another)."""
        digest = state_digest(state)
        secret = secrets.token_urlsafe(32)
        found = await self._bind(keys=[self._keys.oauth_state(digest)], args=[_digest(secret)])
        if not found:
            return None
        sealed, remaining_ms = found
        value = self._open(digest, sealed)
        if value is None:
            return None
        return OpenedConsent(
            secret=secret,
            code_challenge=pkce_challenge(str(value["verifier"])),
            scopes=_scopes(value),
            login_hint=value.get("login_hint"),
            expires_in=max(1, int(remaining_ms) // 1000),
        )

    async def consume(self, state: str) -> PendingConsent | None:
        """The consent ``state`` belongs to, once; None if unknown, used or expired."""
        digest = state_digest(state)
        key = self._keys.oauth_state(digest)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(key)
            pipe.delete(key)
            record, _ = await pipe.execute()
        sealed = record.get(_CONSENT.encode())
        value = self._open(digest, sealed) if sealed is not None else None
        if value is None:
            return None
        browser = record.get(_BROWSER.encode())
        return PendingConsent(
            user_id=str(value["user_id"]),
            scopes=_scopes(value),
            verifier=str(value["verifier"]),
            return_to=value.get("return_to"),
            browser=browser.decode() if browser is not None else None,
        )

    def _open(self, digest: str, sealed: bytes) -> dict[str, Any] | None:
        try:
            return self._cipher.open(_PURPOSE, digest, sealed)
        except GcalError:
            log.warning("oauth state record could not be opened")
            return None
