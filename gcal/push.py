"""Push: Google tells us when a calendar changes, and its sync runs within seconds.

On when ``GCAL_PUSH_WEBHOOK_URL`` is set (auth_web's public ``/webhooks/google/calendar``);
polling goes on, slower, as a fallback. After each sync of a calendar, :meth:`PushChannels.keep`
makes sure an ``events.watch`` channel covers it:

* each channel has a random id and a random 256-bit token; Redis keeps only the token's
  SHA-256, under ``<p>:push:channel:<id>`` with the user, calendar, resource id, expiry and the
  last message number accepted;
* a channel is renewed ``GCAL_PUSH_RENEW_BEFORE_SECONDS`` before it expires: the new one is
  opened first, then the old one stopped (the two overlap, no change is missed);
* on disconnect the user's channels are stopped at Google; after Google revoked the grant
  they are only forgotten (Google can no longer be asked), so their messages are refused.

:meth:`PushChannels.receive` checks a webhook request (channel id, token and resource id, in
constant time; the message number must grow, so a replay is refused) and says whose
calendar to sync. It answers in a few Redis round trips; the sync itself is queued.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from redis.asyncio import Redis

from gcal.calendar_api import CalendarClient
from gcal.errors import GcalError, NotFound
from gcal.keys import RedisKeys
from gcal.settings import Settings

log = logging.getLogger(__name__)

# After a channel's expiry its record is kept this much longer (late messages are refused
# as "expired" rather than "unknown").
_GRACE_MS = 3600 * 1000
_STATES = frozenset({"sync", "exists", "not_exists"})

# KEYS: the channel. ARGV: the message number. 1: accepted; 0: not newer than the last one.
_NEWER = """
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
if tonumber(ARGV[1]) <= last then
    return 0
end
redis.call('HSET', KEYS[1], 'last', ARGV[1])
return 1
"""


class WebhookRefused(Exception):
    """A webhook request that is not from a channel of ours, or not a new message."""

    def __init__(self, status: int, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.kind = kind  # malformed, unknown, forged, expired or replayed
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Ping:
    """A genuine, new message of one of our channels."""

    user_id: str
    calendar_id: str
    state: str  # "sync" (the channel is open), "exists" or "not_exists" (a change)

    @property
    def changed(self) -> bool:
        return self.state != "sync"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PushChannels:
    """The calendars' push channels; see the module docstring."""

    def __init__(
        self, redis: Redis, keys: RedisKeys, calendar: CalendarClient, settings: Settings
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._calendar = calendar
        self._settings = settings
        self._newer = redis.register_script(_NEWER)

    @property
    def enabled(self) -> bool:
        return self._settings.push_webhook_url is not None

    async def keep(self, user_id: str, calendar_id: str) -> None:
        """Make sure a live channel watches the calendar (open or renew one as needed)."""
        if not self.enabled:
            return
        raw = await self._redis.get(self._keys.push_watch(user_id, calendar_id))
        current = json.loads(raw) if raw else None
        now_ms = int(time.time() * 1000)
        if (
            current
            and current["expires_ms"] - now_ms > self._settings.push_renew_before_seconds * 1000
        ):
            return
        await self._open(user_id, calendar_id, now_ms)
        if current:
            await self._stop(user_id, current, reason="renewed")

    async def _open(self, user_id: str, calendar_id: str, now_ms: int) -> None:
        channel_id, token = uuid.uuid4().hex, secrets.token_urlsafe(32)
        asked = now_ms + self._settings.push_channel_ttl_seconds * 1000
        answer = await self._calendar.watch_events(
            user_id,
            calendar_id,
            channel_id=channel_id,
            address=str(self._settings.push_webhook_url),
            token=token,
            expiration_ms=asked,
        )
        resource_id = str(answer.get("resourceId", ""))
        try:
            expires_ms = int(answer.get("expiration", asked))
        except (TypeError, ValueError):
            expires_ms = asked
        record = {
            "user_id": user_id,
            "calendar_id": calendar_id,
            "token_sha256": _digest(token),
            "resource_id": resource_id,
            "expires_ms": str(expires_ms),
            "last": "0",
        }
        watch = {"channel_id": channel_id, "resource_id": resource_id, "expires_ms": expires_ms}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._keys.push_channel(channel_id), mapping=record)
            pipe.pexpireat(self._keys.push_channel(channel_id), expires_ms + _GRACE_MS)
            pipe.set(self._keys.push_watch(user_id, calendar_id), json.dumps(watch))
            await pipe.execute()
        log.info("push channel opened user=%s expires_ms=%d", user_id, expires_ms)

    async def _stop(self, user_id: str, watch: Mapping[str, object], *, reason: str) -> None:
        """Stop a channel at Google (best effort) and forget it."""
        channel_id = str(watch["channel_id"])
        try:
            await self._calendar.stop_channel(user_id, channel_id, str(watch["resource_id"]))
        except NotFound:
            pass  # expired or stopped already
        except GcalError as err:
            log.warning("push channel not stopped at Google user=%s (%s)", user_id, err.code)
        await self._redis.delete(self._keys.push_channel(channel_id))
        log.info("push channel stopped user=%s reason=%s", user_id, reason)

    async def stop_all(self, user_id: str, calendar_ids: Iterable[str]) -> None:
        """Stop the user's channels at Google and forget them (while the grant still works)."""
        for calendar_id in calendar_ids:
            key = self._keys.push_watch(user_id, calendar_id)
            raw = await self._redis.get(key)
            if raw:
                await self._stop(user_id, json.loads(raw), reason="disconnected")
                await self._redis.delete(key)

    async def forget_all(self, user_id: str, calendar_ids: Iterable[str]) -> None:
        """Forget the user's channels without asking Google (the grant no longer works):
        their messages are refused from now on, and they lapse at Google."""
        for calendar_id in calendar_ids:
            key = self._keys.push_watch(user_id, calendar_id)
            raw = await self._redis.get(key)
            if raw:
                await self._redis.delete(
                    self._keys.push_channel(str(json.loads(raw)["channel_id"])), key
                )

    async def receive(self, headers: Mapping[str, str]) -> Ping:
        """The calendar a webhook request is about; :class:`WebhookRefused` if it is not a
        new message of a live channel of ours."""
        channel_id = headers.get("X-Goog-Channel-ID", "")
        token = headers.get("X-Goog-Channel-Token", "")
        resource_id = headers.get("X-Goog-Resource-ID", "")
        state = headers.get("X-Goog-Resource-State", "")
        number = headers.get("X-Goog-Message-Number", "")
        if not (0 < len(channel_id) <= 64 and channel_id.isascii() and channel_id.isalnum()):
            raise WebhookRefused(400, "malformed", "no channel id")
        if state not in _STATES or not (number.isascii() and number.isdigit()):
            raise WebhookRefused(400, "malformed", "not a calendar push message")
        key = self._keys.push_channel(channel_id)
        record: dict[bytes, bytes] = await self._redis.hgetall(key)  # type: ignore[misc]
        if not record:
            raise WebhookRefused(404, "unknown", "unknown channel")
        expected_token = record.get(b"token_sha256", b"").decode()
        expected_resource = record.get(b"resource_id", b"").decode()
        # Both compared whatever the first gives, and in constant time.
        token_ok = hmac.compare_digest(_digest(token), expected_token)
        resource_ok = hmac.compare_digest(resource_id.encode(), expected_resource.encode())
        if not (token_ok and resource_ok):
            raise WebhookRefused(403, "forged", "wrong channel token or resource")
        if int(record.get(b"expires_ms", b"0")) < int(time.time() * 1000):
            raise WebhookRefused(404, "expired", "expired channel")
        if not await self._newer(keys=[key], args=[int(number)]):
            raise WebhookRefused(409, "replayed", "message already received")
        return Ping(record[b"user_id"].decode(), record[b"calendar_id"].decode(), state)
