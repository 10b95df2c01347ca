"""The token store: each user's Google tokens, encrypted in Redis, and valid access tokens
on demand.

    store = TokenStore(redis, keys, cipher, oauth, notifier, refresh_margin=300)
    await store.link(user_id, grant)          # after the consent callback
    token = await store.access_token(user_id)  # refreshed ahead of expiry when needed

A refresh is single-flight across every process: the refresher holds a Redis lock on the
user; the others wait for it, then re-read the store and find the new token. ``invalid_grant``
on refresh means the user revoked access (or it lapsed): the tokens are purged, the user is
marked as needing re-consent, and ``auth_revoked`` is announced. A transient token-endpoint
failure is a retryable :class:`UpstreamUnavailable`, never a revocation.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from redis.exceptions import LockError

from gcal.crypto import Cipher
from gcal.errors import AuthRequired, AuthRevoked, InternalError, UpstreamUnavailable
from gcal.keys import RedisKeys
from gcal.notifications import Notification, NotificationType, Notifier
from gcal.oauth import OAuthClient, TokenGrant

log = logging.getLogger(__name__)

_PURPOSE = "tokens"
_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2])
    return 1
end
return 0
"""


class StoredTokens(BaseModel):
    """A user's token set, as sealed in Redis."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    access_token: str
    refresh_token: str
    expires_at: dt.datetime
    scopes: frozenset[str]
    email: str | None = None
    linked_at: dt.datetime


class TokenStore:
    """Encrypted per-user tokens with refresh and revocation handling."""

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        cipher: Cipher,
        oauth: OAuthClient,
        notifier: Notifier,
        *,
        refresh_margin: float = 300.0,
        lock_timeout: float = 30.0,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._cipher = cipher
        self._oauth = oauth
        self._notifier = notifier
        self._margin = dt.timedelta(seconds=refresh_margin)
        self._lock_timeout = lock_timeout

    # Reading and writing ---------------------------------------------------------------------

    async def get(self, user_id: str) -> StoredTokens | None:
        blob = await self._redis.get(self._keys.tokens(user_id))
        if blob is None:
            return None
        return StoredTokens.model_validate(self._cipher.open(_PURPOSE, user_id, blob))

    async def _put(self, user_id: str, tokens: StoredTokens) -> None:
        blob = self._cipher.seal(_PURPOSE, user_id, tokens.model_dump(mode="json"))
        await self._redis.set(self._keys.tokens(user_id), blob)

    async def link(self, user_id: str, grant: TokenGrant) -> StoredTokens:
        """Keep the tokens of a completed consent; clears any re-consent mark."""
        if grant.refresh_token is None:
            raise InternalError("Google granted no refresh token; consent must be forced")
        previous = await self.get(user_id)
        tokens = StoredTokens(
            access_token=grant.access_token.get_secret_value(),
            refresh_token=grant.refresh_token.get_secret_value(),
            expires_at=grant.expires_at,
            scopes=grant.scopes,
            email=grant.email or (previous.email if previous else None),
            linked_at=dt.datetime.now(dt.UTC),
        )
        await self._put(user_id, tokens)
        await self._redis.delete(self._keys.reconsent(user_id))
        return tokens

    async def purge(self, user_id: str) -> StoredTokens | None:
        """Forget the user's tokens; returns what was stored (to revoke it at Google)."""
        tokens = await self.get(user_id)
        await self._redis.delete(self._keys.tokens(user_id))
        return tokens

    async def reconsent_reason(self, user_id: str) -> str | None:
        """Why the user must link again (``auth_revoked``...), or None."""
        raw = await self._redis.get(self._keys.reconsent(user_id))
        return str(json.loads(raw)["reason"]) if raw else None

    # Access tokens ---------------------------------------------------------------------------

    async def access_token(self, user_id: str, *, rejected: str | None = None) -> str:
        """A valid access token for ``user_id``.

        Refreshes when the stored one expires within the margin, or when it is ``rejected``
        (Google answered 401 to it). Raises :class:`AuthRequired` when the user has no linked
        account, :class:`AuthRevoked` when Google refuses the refresh token.
        """
        tokens = await self._require(user_id)
        if self._usable(tokens, rejected):
            return tokens.access_token
        lock = self._redis.lock(
            self._keys.refresh_lock(user_id),
            timeout=self._lock_timeout,
            blocking_timeout=self._lock_timeout,
            sleep=0.05,
        )
        try:
            async with lock:
                # Another process may have refreshed while we waited for the lock.
                tokens = await self._require(user_id)
                if self._usable(tokens, rejected):
                    return tokens.access_token
                return (await self._refresh(user_id, tokens)).access_token
        except LockError as err:
            raise UpstreamUnavailable("timed out waiting for another token refresh") from err

    async def _require(self, user_id: str) -> StoredTokens:
        tokens = await self.get(user_id)
        if tokens is None:
            reason = await self.reconsent_reason(user_id)
            if reason == NotificationType.AUTH_REVOKED:
                raise AuthRevoked("the user revoked access; they must link their account again")
            raise AuthRequired("no Google account is linked for this user")
        return tokens

    def _usable(self, tokens: StoredTokens, rejected: str | None) -> bool:
        if rejected is not None and tokens.access_token == rejected:
            return False
        return tokens.expires_at - self._margin > dt.datetime.now(dt.UTC)

    async def _refresh(self, user_id: str, tokens: StoredTokens) -> StoredTokens:
        try:
            grant = await self._oauth.refresh(tokens.refresh_token)
        except AuthRevoked:
            await self.mark_revoked(user_id, email=tokens.email)
            raise
        fresh = tokens.model_copy(
            update={
                "access_token": grant.access_token.get_secret_value(),
                "expires_at": grant.expires_at,
                # Google does not rotate refresh tokens; keep ours unless it sends a new one.
                "refresh_token": (
                    grant.refresh_token.get_secret_value()
                    if grant.refresh_token
                    else tokens.refresh_token
                ),
                "scopes": grant.scopes or tokens.scopes,
                "email": grant.email or tokens.email,
            }
        )
        await self._put(user_id, fresh)
        log.info("refreshed access token user=%s", user_id)
        return fresh

    async def mark_revoked(self, user_id: str, *, email: str | None = None) -> None:
        """Purge the tokens, mark the user for re-consent, announce ``auth_revoked``."""
        await self._redis.delete(self._keys.tokens(user_id))
        await self._redis.set(
            self._keys.reconsent(user_id), json.dumps({"reason": NotificationType.AUTH_REVOKED})
        )
        log.warning("grant revoked at Google user=%s", user_id)
        await self._notifier.publish(
            Notification(type=NotificationType.AUTH_REVOKED, user_id=user_id, email=email)
        )

    async def disconnect(self, user_id: str) -> bool:
        """Revoke the user's grant at Google, then forget everything kept for the user.

        Idempotent: a user with nothing stored is simply reported as not linked (False).
        A transient failure to reach Google raises :class:`UpstreamUnavailable` and keeps
        the tokens, so a retry can still revoke them.
        """
        tokens = await self.get(user_id)
        if tokens is not None:
            # Revoking the refresh token revokes the whole grant, access tokens included.
            await self._oauth.revoke(tokens.refresh_token)
        await self._redis.delete(self._keys.tokens(user_id), self._keys.reconsent(user_id))
        if tokens is not None:
            log.info("disconnected user=%s", user_id)
            await self._notifier.publish(
                Notification(
                    type=NotificationType.AUTH_DISCONNECTED, user_id=user_id, email=tokens.email
                )
            )
        return tokens is not None


async def reencrypt_tokens(redis: Redis, keys: RedisKeys, cipher: Cipher) -> int:
    """Re-encrypt every stored token set under ``cipher``'s current key (key rotation).

    Returns how many changed. Safe while the service runs: each value is replaced by
    compare-and-set, and a token set rewritten meanwhile is already under the new key.
    """
    compare_and_set = redis.register_script(_COMPARE_AND_SET)
    changed = 0
    async for key in redis.scan_iter(match=keys.tokens_pattern(), count=500):
        blob = await redis.get(key)
        if blob is None or cipher.is_current(blob):
            continue
        if await compare_and_set(keys=[key], args=[blob, cipher.rotate(blob)]):
            changed += 1
    return changed
