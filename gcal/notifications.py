"""Notifications: what the service announces, as JSON, to any listening service.

Each notification is published twice: on a pub/sub channel for live listeners and on a capped
stream for consumers that were away (names in :mod:`gcal.keys`). The JSON shape::

    {"type": "auth_linked", "user_id": "user-42", "at": "2026-11-24T18:00:00Z", ...}

``type`` is one of :class:`NotificationType`; the other fields depend on it and are
documented in ``docs/contract.md``. Notifications never carry tokens or codes.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from gcal.keys import NOTIFICATION_STREAM_MAXLEN, RedisKeys

log = logging.getLogger(__name__)


class NotificationType(enum.StrEnum):
    AUTH_LINKED = "auth_linked"
    AUTH_SCOPE_MISSING = "auth_scope_missing"
    AUTH_REVOKED = "auth_revoked"
    AUTH_DISCONNECTED = "auth_disconnected"


class Notification(BaseModel):
    """One announcement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: NotificationType
    user_id: str
    at: dt.datetime = Field(default_factory=lambda: dt.datetime.now(dt.UTC))
    email: str | None = None
    scopes: list[str] | None = None
    missing_scopes: list[str] | None = None

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


class Notifier:
    """Publishes notifications to the stream and the channel, in one MULTI (stream first)."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def publish(self, notification: Notification) -> None:
        payload = notification.to_json()
        fields: dict[Any, Any] = {"type": notification.type.value, "json": payload}
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(
                self._keys.notification_stream,
                fields,
                maxlen=NOTIFICATION_STREAM_MAXLEN,
                approximate=True,
            )
            pipe.publish(self._keys.notifications, payload)
            await pipe.execute()
        log.info("notified %s user=%s", notification.type.value, notification.user_id)
