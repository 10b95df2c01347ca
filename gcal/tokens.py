"""The token store: each user's Google tokens, sealed (encrypted, bound to the user) in Redis,
and, once they are gone or unusable, why the user must link again (the re-consent mark).

    store = TokenStore(redis, keys, cipher)
    current = await store.read("user-42")   # SealedTokens(tokens, blob), UnreadableTokens or None
    await store.replace("user-42", current.blob, fresher_tokens)   # compare-and-set
    replaced = await store.put("user-42", linked_tokens)           # a new link: whatever was there

Every write that follows a read is compare-and-set against the exact value read, so two
writers (a refresh in a worker, a re-link in auth_web, a key rotation) never overwrite one
another: the one that lost sees ``False`` and re-reads. Only a new link writes
unconditionally, and it gets back exactly the value it replaced.

A stored value that no configured key opens (keys rotated out of order) or that does not
parse as tokens reads as :class:`UnreadableTokens`. It is kept as it is, never deleted on
reading: an operator who restores the missing key gets every such user back, and a new link
(or a disconnect) replaces it anyway. What the tokens are *for* (refresh, revocation,
linking) is :mod:`gcal.accounts`; this module only keeps them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis

from gcal.crypto import Cipher
from gcal.errors import GcalError, InternalError
from gcal.keys import RedisKeys

log = logging.getLogger(__name__)

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
# KEYS[1]: the token key; KEYS[2]: the re-consent mark. ARGV[1]: the token value read;
# ARGV[2]: the mark (JSON); ARGV[3]: "purge" deletes the tokens and sets the mark, "keep"
# keeps them and sets the mark only if none is set. 1 if done; 0 if the tokens changed
# meanwhile (or, for "keep", the user was already marked).
_SET_ASIDE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
if ARGV[3] == 'purge' then
    redis.call('DEL', KEYS[1])
    redis.call('SET', KEYS[2], ARGV[2])
    return 1
end
if redis.call('SET', KEYS[2], ARGV[2], 'NX') then
    return 1
end
return 0
"""


class StoredTokens(BaseModel):
    """A user's token set, as sealed in Redis."""

    # Fields a newer version adds are ignored, not refused: a refused value would read as
    # unreadable here and send its user to re-consent during a rolling deploy.
    model_config = ConfigDict(extra="ignore", frozen=True)

    access_token: str
    refresh_token: str
    expires_at: dt.datetime
    scopes: frozenset[str]
    email: str | None = None
    # Google's stable account id (OpenID ``sub``); None for tokens linked before it was kept.
    sub: str | None = None
    linked_at: dt.datetime


@dataclass(frozen=True, slots=True)
class SealedTokens:
    """Tokens as read, with the exact stored value (the witness for compare-and-set)."""

    tokens: StoredTokens
    blob: bytes


@dataclass(slots=True)
class Rotation:
    """What a re-encryption pass did: token sets moved to the current key, and those that no
    configured key opens (left as they were)."""

    changed: int = 0
    unreadable: int = 0


@dataclass(frozen=True, slots=True)
class UnreadableTokens:
    """A stored value no configured key opens, or not a token set this version reads."""

    blob: bytes


class TokenStore:
    """Sealed per-user token sets with compare-and-set writes."""

    def __init__(self, redis: Redis, keys: RedisKeys, cipher: Cipher) -> None:
        self._redis = redis
        self._keys = keys
        self._cipher = cipher
        self._compare_and_set = redis.register_script(_COMPARE_AND_SET)
        self._set_aside = redis.register_script(_SET_ASIDE)

    async def read(self, user_id: str) -> SealedTokens | UnreadableTokens | None:
        """The user's tokens with the stored value; :class:`UnreadableTokens` if they cannot be
        opened (a key that is no longer configured, or a foreign value); None if none."""
        blob = await self._redis.get(self._keys.tokens(user_id))
        return None if blob is None else self.open(user_id, blob)

    def open(self, user_id: str, blob: bytes) -> SealedTokens | UnreadableTokens:
        """A stored value, opened."""
        try:
            opened = self._cipher.open(_PURPOSE, user_id, blob)
            return SealedTokens(StoredTokens.model_validate(opened), blob)
        except (GcalError, ValidationError) as err:
            # The reason names no value: neither the blob nor what it decrypted to.
            log.warning("stored tokens cannot be read user=%s (%s)", user_id, type(err).__name__)
            return UnreadableTokens(blob)

    async def get(self, user_id: str) -> StoredTokens | None:
        """The user's tokens, or None; :class:`InternalError` if they cannot be opened."""
        current = await self.read(user_id)
        if isinstance(current, UnreadableTokens):
            raise InternalError("stored tokens cannot be decrypted")
        return current.tokens if current else None

    def seal(self, user_id: str, tokens: StoredTokens) -> bytes:
        return self._cipher.seal(_PURPOSE, user_id, tokens.model_dump(mode="json"))

    async def put(self, user_id: str, tokens: StoredTokens) -> bytes | None:
        """Store ``tokens`` whatever was there (a new link) and clear any re-consent mark, in
        one transaction; the value replaced, if any."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.tokens(user_id), self.seal(user_id, tokens), get=True)
            pipe.delete(self._keys.reconsent(user_id))
            replaced, _ = await pipe.execute()
        return bytes(replaced) if replaced is not None else None

    async def replace(self, user_id: str, old: bytes, tokens: StoredTokens | None) -> bool:
        """Store ``tokens`` (or delete, for None) only if ``old`` is still what is stored."""
        new = self.seal(user_id, tokens) if tokens is not None else b""
        return bool(await self._compare_and_set(keys=[self._keys.tokens(user_id)], args=[old, new]))

    async def set_aside(self, user_id: str, old: bytes, reason: str, *, purge: bool) -> bool:
        """Mark the user as needing to link again, for ``reason``, if ``old`` is still what is
        stored; with ``purge`` the tokens are deleted and the mark overwrites any other, without
        it the tokens stay and only a first mark is set. Whether this call did it: a caller
        announces the change only then, so it is announced once."""
        done = await self._set_aside(
            keys=[self._keys.tokens(user_id), self._keys.reconsent(user_id)],
            args=[old, json.dumps({"reason": reason}), "purge" if purge else "keep"],
        )
        return bool(done)

    async def reconsent_reason(self, user_id: str) -> str | None:
        """Why the user must link again (``auth_revoked``, ``tokens_unreadable``), or None."""
        raw = await self._redis.get(self._keys.reconsent(user_id))
        return str(json.loads(raw)["reason"]) if raw else None

    async def forget(self, user_id: str, old: bytes | None) -> bool:
        """Delete the tokens, if ``old`` is still what is stored (None: nothing was), and any
        re-consent mark. False if the tokens changed meanwhile."""
        if old is not None and not await self.replace(user_id, old, None):
            return False
        await self._redis.delete(self._keys.reconsent(user_id))
        return True

    async def rotate_all(self, progress: Callable[[int, int], None] | None = None) -> Rotation:
        """Re-encrypt every stored token set under the cipher's current key (key rotation).

        Safe while the service runs: each value is replaced by compare-and-set, and a token
        set rewritten meanwhile is already under the new key. A value no configured key opens
        is left as it is and counted: its key is missing from the list.
        ``progress(checked, changed)`` is called after each token set.
        """
        rotation = Rotation()
        checked = 0
        async for key in self._redis.scan_iter(match=self._keys.tokens_pattern(), count=500):
            checked += 1
            if progress is not None:
                progress(checked, rotation.changed)
            blob = await self._redis.get(key)
            if blob is None or self._cipher.is_current(blob):
                continue
            try:
                rotated = self._cipher.rotate(blob)
            except InternalError:
                rotation.unreadable += 1
                continue
            if await self._compare_and_set(keys=[key], args=[blob, rotated]):
                rotation.changed += 1
        return rotation
