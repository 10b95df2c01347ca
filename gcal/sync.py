"""Calendar sync: every change to one calendar's events reaches subscribers, exactly once, in
order, as ``event_created`` / ``event_updated`` / ``event_deleted`` notifications.

    outcome = await CalendarSync(...).run("user-42", "primary")

One run lists what changed since the last one: the first run (and any full re-listing) lists a
window of time, ``GCAL_SYNC_WINDOW_PAST_DAYS`` back to ``GCAL_SYNC_WINDOW_FUTURE_DAYS`` ahead;
later runs ask Google only for the changes since the stored sync token. Pages ask for the
basic projection only (``fields``).

What subscribers were told is kept per calendar, compactly: event id -> its etag, start and
end (``<p>:sync:<user>:<calendar>:seen``). It makes publishing exactly once per change:

* an event whose etag is the one already announced is not announced again (a page listed
  twice, after a crash or a retry, publishes nothing twice);
* a listed event never announced is ``event_created``; a changed etag is ``event_updated``; a
  cancelled event that was announced is ``event_deleted`` (one never announced is skipped);
* each page is applied in one MULTI/EXEC: the notifications, the seen record and the
  checkpoint (the next page token) together, so a run cut off mid-listing resumes at the page
  it had reached and repeats nothing. The transaction applies only if the calendar's state is
  still the one the page was listed from (compared, then WATCHed), so two runs of one
  calendar at once cannot both publish a page: the later one stops (Throttled). A page with
  nothing in it, as most incremental syncs are, only moves the cursor, by compare-and-set
  (one Redis call; none when the cursor did not move).

Google expires sync tokens (410 ``fullSyncRequired``) and a full listing returns no trace of
events deleted meanwhile. So a full listing remembers the ids it met
(``...:listed``), and at its end every announced event it did not meet, and whose time lies
in the window, is announced deleted; announced events outside the window are forgotten
silently (they left the window; if they change later they are announced as created).

The stored state carries a format version: a state of another version, an unreadable one, or
one made for another event-type filter, is dropped, ``sync_reset`` is announced, and the
calendar is listed afresh (every event in the window is then announced as created).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from redis.asyncio import Redis
from redis.exceptions import WatchError

from gcal.calendar_api import CalendarClient, EventsPage
from gcal.errors import FullSyncRequired, InvalidRequest, NotFound, Throttled
from gcal.event_queries import BASIC_EVENT_FIELDS, EventQuery
from gcal.keys import RedisKeys
from gcal.notifications import (
    EventCreated,
    EventDeleted,
    EventUpdated,
    Notification,
    Notifier,
    SyncReset,
)
from gcal.settings import Settings

log = logging.getLogger(__name__)

# Bump when SyncState or the seen record changes shape: old states are then dropped.
STATE_VERSION = 1
SYNC_FIELDS = f"nextPageToken,nextSyncToken,items({BASIC_EVENT_FIELDS})"
_DAY = 86_400
# KEYS: a calendar's state. ARGV: the value it must hold ('' for none), the value to set.
_COMPARE_AND_SET = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


class SyncState(BaseModel):
    """One calendar's sync cursor and progress, as stored (JSON)."""

    model_config = ConfigDict(extra="forbid")

    v: int = STATE_VERSION
    sync_token: str | None = None  # set once a listing completed: changes since then
    full: bool = True  # the pass in progress (or next) is a full listing of the window
    page_token: str | None = None  # where the pass in progress has got to
    window: tuple[int, int] | None = None  # the full pass's window, epoch seconds
    event_types: list[str] | None = None  # the filter the cursor belongs to


@dataclass
class SyncOutcome:
    """What one run did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    pages: int = 0
    full: bool = False  # it listed the window (first sync, or after Google expired the token)
    resumed: bool = False  # it went on from a checkpoint left by an earlier run
    reset: str | None = None  # why stored state was dropped, if it was


def _epoch(when: Any) -> int | None:
    """Epoch seconds of an EventDateTime (``dateTime`` or all-day ``date``), if readable."""
    if not isinstance(when, dict):
        return None
    value = when.get("dateTime") or when.get("date")
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)  # an all-day date, or a local time: near enough
    return int(moment.timestamp())


def seen_record(item: dict[str, Any]) -> str:
    """What is kept of an announced event: ``etag<TAB>start<TAB>end`` (epoch seconds)."""
    start, end = _epoch(item.get("start")), _epoch(item.get("end"))
    return f"{item.get('etag', '')}\t{'' if start is None else start}\t{'' if end is None else end}"


def _in_window(record: str, window: tuple[int, int]) -> bool:
    _, _, times = record.partition("\t")
    start_text, _, end_text = times.partition("\t")
    low, high = window
    try:
        if end_text and int(end_text) <= low:
            return False
        if start_text and int(start_text) >= high:
            return False
    except ValueError:
        return True
    return True


@dataclass
class _Page:
    """One page's effect, applied in one transaction."""

    notes: list[Notification] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)
    forget: list[str] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)


class CalendarSync:
    """Syncs one calendar at a time; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        calendar: CalendarClient,
        notifier: Notifier,
        settings: Settings,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._calendar = calendar
        self._notifier = notifier
        self._settings = settings
        self._compare_and_set = redis.register_script(_COMPARE_AND_SET)

    @property
    def event_types(self) -> list[str] | None:
        return list(self._settings.sync_event_types) or None

    async def state(self, user_id: str, calendar_id: str) -> SyncState | None:
        """The stored state, or None (absent, unreadable or of another format)."""
        raw = await self._redis.get(self._keys.sync_state(user_id, calendar_id))
        return self._parse(raw)[0] if raw is not None else None

    async def run(self, user_id: str, calendar_id: str) -> SyncOutcome:
        """Sync one of the user's synced calendars (:mod:`gcal.sync_schedule`); NotFound for
        another."""
        outcome = SyncOutcome()
        state_key = self._keys.sync_state(user_id, calendar_id)
        first_read = [await self._first_read(user_id, calendar_id)]
        first = True
        while True:
            stored = first_read.pop() if first_read else await self._redis.get(state_key)
            state, reset = self._parse(stored)
            if reset is not None:
                await self._reset(user_id, calendar_id, reset)
                outcome.reset = reset
                continue
            if state.full and state.window is None:
                state = self._full_pass(state)
            if first:
                outcome.resumed = state.page_token is not None
                first = False
            page = await self._list(user_id, calendar_id, state, outcome)
            if page is None:  # Google expired the sync token: list the window afresh
                state = self._full_pass(state)
                await self._redis.set(state_key, state.model_dump_json())
                continue
            outcome.pages += 1
            outcome.full = outcome.full or state.full
            last = page.next_page_token is None
            following = self._next(state, page, last=last)
            if page.items or (last and state.full):
                effect = await self._commit(
                    user_id, calendar_id, stored, page, state=state, following=following, last=last
                )
                self._count(outcome, effect)
            elif following.model_dump_json().encode() != stored:
                # Nothing to announce (most incremental syncs): only the cursor moves.
                await self._advance(state_key, stored, following)
            if last:
                return outcome

    async def _first_read(self, user_id: str, calendar_id: str) -> bytes | None:
        """The stored state, if the calendar is one the workers sync (one round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.sismember(self._keys.sync_calendars(user_id), calendar_id)
            pipe.get(self._keys.sync_state(user_id, calendar_id))
            synced, stored = await pipe.execute()
        if not synced:
            # Under another id ("primary" for the email) or after the calendar left the list,
            # its state would be a second one: every event announced again, and kept after a
            # disconnect.
            raise NotFound(
                "the workers do not sync this calendar of the user; "
                "use its id from the calendar list"
            )
        return stored  # type: ignore[no-any-return]  # redis-py's pipeline replies are Any

    async def _commit(
        self,
        user_id: str,
        calendar_id: str,
        stored: bytes | None,
        page: EventsPage,
        *,
        state: SyncState,
        following: SyncState,
        last: bool,
    ) -> _Page:
        """Apply a page in one transaction, if the state is still the one it was listed from:
        its notifications, the seen record, the next cursor."""
        async with self._redis.pipeline(transaction=True) as pipe:
            state_key = self._keys.sync_state(user_id, calendar_id)
            await pipe.watch(state_key)
            if await pipe.get(state_key) != stored:
                raise Throttled("another sync of this calendar is running")
            effect = await self._effect(pipe, user_id, calendar_id, state, page.items)
            if last and state.full:
                await self._deletions_in_gap(pipe, user_id, calendar_id, state, effect)
            pipe.multi()  # type: ignore[no-untyped-call]
            self._apply(
                pipe, user_id, calendar_id, effect, state=state, following=following, last=last
            )
            try:
                await pipe.execute()
            except WatchError as err:
                raise Throttled("another sync of this calendar is running") from err
        return effect

    async def _advance(self, state_key: str, stored: bytes | None, following: SyncState) -> None:
        """Store the next cursor, if the state is still the one the page was listed from."""
        moved = await self._compare_and_set(
            keys=[state_key], args=[stored or b"", following.model_dump_json()]
        )
        if not moved:
            raise Throttled("another sync of this calendar is running")

    # One page -------------------------------------------------------------------------------

    async def _list(
        self, user_id: str, calendar_id: str, state: SyncState, outcome: SyncOutcome
    ) -> EventsPage | None:
        incremental = not state.full and state.sync_token is not None
        window = state.window if state.full else None
        query = EventQuery(
            time_min=dt.datetime.fromtimestamp(window[0], dt.UTC) if window else None,
            time_max=dt.datetime.fromtimestamp(window[1], dt.UTC) if window else None,
            single_events=True,
            max_results=self._settings.sync_page_size,
            event_types=self.event_types,
        )
        try:
            return await self._calendar.list_events(
                user_id,
                calendar_id,
                query,
                page_token=state.page_token,
                sync_token=state.sync_token if incremental else None,
                fields=SYNC_FIELDS,
            )
        except FullSyncRequired:
            if not incremental:
                raise
            log.info("sync token expired user=%s: listing the window again", user_id)
            return None
        except InvalidRequest:
            if state.page_token is None or not outcome.resumed or outcome.pages:
                raise
            # A checkpoint too old for Google: list this pass again from its first page.
            log.info("stale page token user=%s: restarting the pass", user_id)
            state.page_token = None
            return await self._list(user_id, calendar_id, state, outcome)

    async def _effect(
        self,
        pipe: Any,
        user_id: str,
        calendar_id: str,
        state: SyncState,
        items: Sequence[dict[str, Any]],
    ) -> _Page:
        effect = _Page()
        wanted = [item for item in items if isinstance(item.get("id"), str)]
        if not wanted:
            return effect
        ids = [str(item["id"]) for item in wanted]
        before = await pipe.hmget(self._keys.sync_seen(user_id, calendar_id), ids)
        for item, event_id, told in zip(wanted, ids, before, strict=True):
            if state.full:
                effect.listed.append(event_id)
            if item.get("status") == "cancelled":
                if told is not None:
                    effect.forget.append(event_id)
                    effect.notes.append(
                        EventDeleted(user_id=user_id, calendar_id=calendar_id, event_id=event_id)
                    )
                continue
            record = seen_record(item)
            if told is not None and told.decode().partition("\t")[0] == record.partition("\t")[0]:
                continue  # this version was announced already
            effect.seen[event_id] = record
            kind = EventCreated if told is None else EventUpdated
            effect.notes.append(
                kind(user_id=user_id, calendar_id=calendar_id, event_id=event_id, event=item)
            )
        return effect

    async def _deletions_in_gap(
        self, pipe: Any, user_id: str, calendar_id: str, state: SyncState, effect: _Page
    ) -> None:
        """At the end of a full listing: announced events it did not meet were deleted."""
        assert state.window is not None  # noqa: S101 - a full pass always has one
        seen = await pipe.hgetall(self._keys.sync_seen(user_id, calendar_id))
        if not seen:
            return
        met = {
            m.decode() for m in await pipe.smembers(self._keys.sync_listed(user_id, calendar_id))
        }
        met.update(effect.listed)
        for raw_id, raw_record in seen.items():
            event_id = raw_id.decode()
            if event_id in met or event_id in effect.forget:
                continue
            effect.forget.append(event_id)
            if _in_window(raw_record.decode(), state.window):
                effect.notes.append(
                    EventDeleted(user_id=user_id, calendar_id=calendar_id, event_id=event_id)
                )

    def _next(self, state: SyncState, page: EventsPage, *, last: bool) -> SyncState:
        if not last:
            return state.model_copy(update={"page_token": page.next_page_token})
        return state.model_copy(
            update={
                "sync_token": page.next_sync_token,
                "page_token": None,
                "full": page.next_sync_token is None,  # no token: list the window next time
                "window": None,
            }
        )

    def _apply(
        self,
        pipe: Any,
        user_id: str,
        calendar_id: str,
        effect: _Page,
        *,
        state: SyncState,
        following: SyncState,
        last: bool,
    ) -> None:
        seen_key = self._keys.sync_seen(user_id, calendar_id)
        listed_key = self._keys.sync_listed(user_id, calendar_id)
        if effect.listed and not last:
            pipe.sadd(listed_key, *effect.listed)
        if effect.seen:
            pipe.hset(seen_key, mapping=effect.seen)
        if effect.forget:
            pipe.hdel(seen_key, *effect.forget)
        for note in effect.notes:
            self._notifier.stage(pipe, note)
        if last and state.full:
            pipe.delete(listed_key)
        if following != state or effect.notes:
            pipe.set(self._keys.sync_state(user_id, calendar_id), following.model_dump_json())

    # State ------------------------------------------------------------------------------------

    def _parse(self, raw: bytes | None) -> tuple[SyncState, str | None]:
        """The state and, if it must be dropped, why."""
        if raw is None:
            return SyncState(event_types=self.event_types), None
        try:
            state = SyncState.model_validate_json(raw)
        except ValidationError:
            return SyncState(event_types=self.event_types), "state_unreadable"
        if state.v != STATE_VERSION:
            return state, "state_format"
        if state.event_types != self.event_types:
            return state, "event_types_changed"
        return state, None

    def _full_pass(self, state: SyncState) -> SyncState:
        now = int(time.time())
        s = self._settings
        window = (now - s.sync_window_past_days * _DAY, now + s.sync_window_future_days * _DAY)
        return state.model_copy(
            update={"full": True, "sync_token": None, "page_token": None, "window": window}
        )

    async def forget(self, user_id: str, calendar_ids: Iterable[str]) -> None:
        """Drop all sync state of these calendars (no longer synced)."""
        names = [
            key
            for calendar_id in calendar_ids
            for key in (
                self._keys.sync_state(user_id, calendar_id),
                self._keys.sync_seen(user_id, calendar_id),
                self._keys.sync_listed(user_id, calendar_id),
            )
        ]
        if names:
            await self._redis.delete(*names)

    async def _reset(self, user_id: str, calendar_id: str, reason: str) -> None:
        """Forget what subscribers were told, and say so."""
        log.warning("sync state dropped user=%s reason=%s", user_id, reason)
        fresh = SyncState(event_types=self.event_types)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(
                self._keys.sync_seen(user_id, calendar_id),
                self._keys.sync_listed(user_id, calendar_id),
            )
            pipe.set(self._keys.sync_state(user_id, calendar_id), fresh.model_dump_json())
            self._notifier.stage(
                pipe, SyncReset(user_id=user_id, calendar_id=calendar_id, reason=reason)
            )
            await pipe.execute()

    @staticmethod
    def _count(outcome: SyncOutcome, effect: _Page) -> None:
        for note in effect.notes:
            if isinstance(note, EventCreated):
                outcome.created += 1
            elif isinstance(note, EventUpdated):
                outcome.updated += 1
            elif isinstance(note, EventDeleted):
                outcome.deleted += 1
