"""Notifications: what the service announces, as JSON, to any listening service.

One family of typed models, tagged by ``type``; each carries only its own fields::

    {"type": "auth_linked", "user_id": "user-42", "at": "2026-11-24T18:00:00Z",
     "email": "alice@example.com", "scopes": ["https://www.googleapis.com/auth/calendar.events"]}

:class:`Notifier` is the one writer of the notifications channel and stream (names in
:mod:`gcal.keys`): every notification goes to the capped stream (entry fields ``type`` and
``json``, for consumers that were away) and to the channel (for live listeners), in one
MULTI/EXEC, plus any extra channels the caller names (a job's own result channel). A JSON
Schema per type is generated from these models (``docs/schemas/``). Notifications never carry
tokens, codes or secrets.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gcal.errors import ErrorCode
from gcal.keys import NOTIFICATION_STREAM_MAXLEN, RedisKeys

log = logging.getLogger(__name__)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Notification(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: dt.datetime = Field(default_factory=_now, description="When it happened (UTC).")

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)


class _AccountNotification(_Notification):
    user_id: str
    email: str | None = Field(default=None, description="The Google account, when known.")


# Accounts ------------------------------------------------------------------------------------


class AuthLinked(_AccountNotification):
    """The user finished linking; jobs for ``user_id`` can run."""

    type: Literal["auth_linked"] = "auth_linked"
    scopes: list[str] = Field(description="The scopes granted.")


class AuthScopeMissing(_AccountNotification):
    """The user declined a needed scope; nothing was kept, the partial grant was given back."""

    type: Literal["auth_scope_missing"] = "auth_scope_missing"
    scopes: list[str] = Field(description="The scopes granted.")
    missing_scopes: list[str] = Field(description="The needed scopes that were not granted.")


class AuthRevoked(_AccountNotification):
    """Google refused the refresh token: access was revoked (or lapsed); tokens deleted."""

    type: Literal["auth_revoked"] = "auth_revoked"


class AuthRequired(_AccountNotification):
    """The user must link their account again before jobs can run; the tokens kept for them
    cannot be used (``reason``). Announced once, until the user links again."""

    type: Literal["auth_required"] = "auth_required"
    reason: Literal["tokens_unreadable"] = Field(
        description="tokens_unreadable: the stored tokens open with none of the service's "
        "encryption keys (a key missing after a rotation done out of order)."
    )


class AuthDisconnected(_AccountNotification):
    """The account was disconnected (revoked at Google) and forgotten."""

    type: Literal["auth_disconnected"] = "auth_disconnected"


# Calendar changes ------------------------------------------------------------------------------


class _CalendarNotification(_Notification):
    user_id: str
    calendar_id: str = Field(description="The calendar's id as Google names it.")


class EventCreated(_CalendarNotification):
    """An event subscribers have not been told of yet (new, or first seen by this sync)."""

    type: Literal["event_created"] = "event_created"
    event_id: str
    event: dict[str, Any] = Field(description="The event in the basic projection.")


class EventUpdated(_CalendarNotification):
    """An event changed since subscribers were last told of it (its etag changed)."""

    type: Literal["event_updated"] = "event_updated"
    event_id: str
    event: dict[str, Any] = Field(description="The event in the basic projection.")


class EventDeleted(_CalendarNotification):
    """An event subscribers were told of was deleted (or cancelled)."""

    type: Literal["event_deleted"] = "event_deleted"
    event_id: str
    status: Literal["cancelled"] = "cancelled"


class SyncReset(_CalendarNotification):
    """The calendar is listed afresh without what subscribers were told before (first sync of
    a new state format, or a changed event-type filter): expect ``event_created`` for every
    event in the window, including ones announced before."""

    type: Literal["sync_reset"] = "sync_reset"
    reason: str


# Jobs ----------------------------------------------------------------------------------------


class JobCompleted(_Notification):
    """A job ended; its result is already at ``result_key``. Also published on the job's own
    channel ``<prefix>:result:<job_id>:done``."""

    type: Literal["job_completed"] = "job_completed"
    job_id: str
    job: str
    ok: bool
    error_code: ErrorCode | None = None
    result_key: str


Notification = Annotated[
    AuthLinked
    | AuthScopeMissing
    | AuthRevoked
    | AuthRequired
    | AuthDisconnected
    | EventCreated
    | EventUpdated
    | EventDeleted
    | SyncReset
    | JobCompleted,
    Field(discriminator="type"),
]
NOTIFICATION_TYPES: tuple[type[_Notification], ...] = (
    AuthLinked,
    AuthScopeMissing,
    AuthRevoked,
    AuthRequired,
    AuthDisconnected,
    EventCreated,
    EventUpdated,
    EventDeleted,
    SyncReset,
    JobCompleted,
)
_ADAPTER: TypeAdapter[Notification] = TypeAdapter(Notification)


def parse_notification(raw: str | bytes) -> Notification:
    """A notification from its JSON (a stream entry's ``json`` or a channel message)."""
    return _ADAPTER.validate_json(raw)


def notification_type(model: type[_Notification]) -> str:
    """The ``type`` tag of a notification model."""
    default = model.model_fields["type"].default
    assert isinstance(default, str)  # noqa: S101 - every model above declares its tag
    return default


class Notifier:
    """The one writer of notifications: the durable stream, then the channel(s)."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def publish(self, note: Notification, *, channels: Sequence[str] = ()) -> None:
        """Announce ``note`` on its own (one MULTI/EXEC)."""
        async with self._redis.pipeline(transaction=True) as pipe:
            self.stage(pipe, note, channels=channels)
            await pipe.execute()
        if isinstance(note, _AccountNotification):
            log.info("notified %s user=%s", note.type, note.user_id)

    def stage(
        self,
        pipe: Pipeline,
        note: Notification,
        *,
        channels: Sequence[str] = (),
        broadcast: bool = True,
    ) -> None:
        """Queue ``note`` on ``pipe``, a transaction the caller runs: stream first, then
        ``channels`` and the notifications channel. A caller writing state the notification
        points at (a job's result) queues that write before this, in the same transaction.
        With ``broadcast`` false only ``channels`` hear it (the completions of the jobs the
        service schedules itself, which would flood the stream)."""
        payload = note.to_json()
        if broadcast:
            fields: dict[Any, Any] = {"type": note.type, "json": payload}
            pipe.xadd(
                self._keys.notification_stream,
                fields,
                maxlen=NOTIFICATION_STREAM_MAXLEN,
                approximate=True,
            )
        for channel in channels:
            pipe.publish(channel, payload)
        if broadcast:
            pipe.publish(self._keys.notifications, payload)
