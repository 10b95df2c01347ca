"""The token store: each user's Google tokens, sealed (encrypted, bound to the user) in Redis.

    store = TokenStore(redis, keys, cipher)
    sealed = await store.read("user-42")          # SealedTokens(tokens, blob) or None
    await store.replace("user-42", sealed.blob, fresher_tokens)   # compare-and-set

Every write that follows a read is compare-and-set against the exact value read, so two
writers (a refresh in a worker, a re-link in auth_web, a key rotation) never overwrite one
another: the one that lost sees ``False`` and re-reads. What the tokens are *for* (refresh,
revocation, linking) is :mod:`gcal.accounts`; this module only keeps them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis

from gcal.crypto import Cipher
from gcal.keys import RedisKeys

_PURPOSE = "tokens"
# KEYS[1]: the token key. ARGV[1]: the value read; ARGV[2]: the new value ("" deletes).
_COMPARE_AND_SET = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
if ARGV[2] == '' then
    redis.call('DEL', KEYS[1])
else
    redis.call('SET', KEYS[1], ARGV[2])
end
return 1
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


@dataclass(frozen=True, slots=True)
class SealedTokens:
    """Tokens as read, with the exact stored value (the witness for compare-and-set)."""

    tokens: StoredTokens
    blob: bytes


class TokenStore:
    """Sealed per-user token sets with compare-and-set writes."""

    def __init__(self, redis: Redis, keys: RedisKeys, cipher: Cipher) -> None:
        self._redis = redis
        self._keys = keys
        self._cipher = cipher
        self._compare_and_set = redis.register_script(_COMPARE_AND_SET)

    async def read(self, user_id: str) -> SealedTokens | None:
        """The user's tokens, or None. :class:`~gcal.errors.InternalError` if they cannot be
        opened (a key that is no longer configured, or a foreign value)."""
        blob = await self._redis.get(self._keys.tokens(user_id))
        if blob is None:
            return None
        opened = self._cipher.open(_PURPOSE, user_id, blob)
        return SealedTokens(StoredTokens.model_validate(opened), blob)

    async def get(self, user_id: str) -> StoredTokens | None:
        sealed = await self.read(user_id)
        return sealed.tokens if sealed else None

    def seal(self, user_id: str, tokens: StoredTokens) -> bytes:
        return self._cipher.seal(_PURPOSE, user_id, tokens.model_dump(mode="json"))

    async def put(self, user_id: str, tokens: StoredTokens) -> bytes:
        """Store ``tokens`` whatever was there (a new link); the stored value."""
        blob = self.seal(user_id, tokens)
        await self._redis.set(self._keys.tokens(user_id), blob)
        return blob

    async def replace(self, user_id: str, old: bytes, tokens: StoredTokens | None) -> bool:
        """Store ``tokens`` (or delete, for None) only if ``old`` is still what is stored."""
        new = self.seal(user_id, tokens) if tokens is not None else b""
        return bool(await self._compare_and_set(keys=[self._keys.tokens(user_id)], args=[old, new]))

    async def rotate_all(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Re-encrypt every stored token set under the cipher's current key (key rotation).

        Returns how many changed; ``progress(checked, changed)`` is called after each token
        set. Safe while the service runs: each value is replaced by compare-and-set, and a
        token set rewritten meanwhile is already under the new key.
        """
        changed = checked = 0
        async for key in self._redis.scan_iter(match=self._keys.tokens_pattern(), count=500):
            checked += 1
            if progress is not None:
                progress(checked, changed)
            blob = await self._redis.get(key)
            if blob is None or self._cipher.is_current(blob):
                continue
            if await self._compare_and_set(keys=[key], args=[blob, self._cipher.rotate(blob)]):
                changed += 1
        return changed
