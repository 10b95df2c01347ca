"""Calendar sync against the emulator: every change reaches the stream as one change event.

Changes are made at the emulator over HTTP, as another Google client would; the sync runs as
the ``sync_calendar`` job through the real queue and an in-loop worker; what subscribers get
is read back from the notifications stream.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from emulator.faults import FaultRule
from emulator.state import Calendar
from gcal.errors import Throttled
from gcal.notifications import (
    EventCreated,
    EventDeleted,
    EventUpdated,
    SyncReset,
    parse_notification,
)
from gcal.scopes import CALENDAR_LIST_READONLY
from gcal.services import open_services
from gcal.sync import STATE_VERSION, SyncOutcome
from gcal.sync_schedule import SyncSchedule, member
from jobs.registry import resolved
from jobs.results import JobResult
from tests.harness import CALENDAR, CalendarApi, Emulator
from tests.pipeline import Pipeline, pipeline, wait_until

EMAIL = "alice@example.com"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def at(days: float, hours: float = 0) -> str:
    return (NOW + dt.timedelta(days=days, hours=hours)).isoformat()


def body(summary: str, days: float = 1, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": at(days)},
        "end": {"dateTime": at(days, 1)},
        **extra,
    }


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix, sync_page_size=3) as p:
        await p.link("u1")
        await synced(p, "primary")
        await p.start_worker()
        yield p


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[CalendarApi]:
    # The user's own calendar app changing their calendars behind the service's back: it has
    # full access, the service only the scopes it links with.
    access, _ = emulator.grant(EMAIL, (CALENDAR,))
    async with aiohttp.ClientSession() as http:
        yield CalendarApi(http, emulator, access)


class Stream:
    """The change events on the notifications stream, read from where the last read ended."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        self.last = "0-0"

    async def new(self) -> list[Any]:
        entries = await self.pipe.redis.xrange(
            self.pipe.keys.notification_stream, min=f"({self.last}"
        )
        if entries:
            self.last = entries[-1][0].decode()
        notes = [parse_notification(fields[b"json"]) for _, fields in entries]
        return [n for n in notes if n.type.startswith(("event_", "sync_"))]


async def synced(pipe: Pipeline, *calendar_ids: str) -> None:
    """Make these calendars of u1 synced calendars, as its calendar list's sync would."""
    await SyncSchedule(pipe.redis, pipe.keys).add_calendars("u1", calendar_ids)


def kinds(notes: list[Any]) -> list[tuple[str, str]]:
    return [(n.type, n.event["summary"] if hasattr(n, "event") else n.event_id) for n in notes]


async def sync(pipe: Pipeline, calendar_id: str = "primary") -> dict[str, Any]:
    result: JobResult = await pipe.run(
        "sync_calendar", {"user_id": "u1", "calendar_id": calendar_id}
    )
    assert result.ok, result
    assert result.data is not None
    return result.data


async def test_the_first_sync_announces_the_window_once_and_then_only_changes(
    pipe: Pipeline, api: CalendarApi
) -> None:
    stream = Stream(pipe)
    inside = [await api.insert(body(f"e{n}", days=n)) for n in range(1, 8)]
    await api.insert(body("too old", days=-60))
    await api.insert(body("too far", days=400))
    first = await sync(pipe)
    notes = await stream.new()
    assert sorted(kinds(notes)) == sorted(("event_created", f"e{n}") for n in range(1, 8))
    assert all(isinstance(n, EventCreated) and n.calendar_id == "primary" for n in notes)
    assert (first["full"], first["pages"], first["created"]) == (True, 3, 7)  # 3 per page

    requests = pipe.emulator.store.requests["events.list"]
    nothing = await sync(pipe)
    assert await stream.new() == []
    assert (nothing["full"], nothing["pages"]) == (False, 1)
    assert pipe.emulator.store.requests["events.list"] == requests + 1  # one request, no change

    moved = inside[0]
    await api.ok("PATCH", f"/calendars/primary/events/{moved['id']}", body={"summary": "e1 moved"})
    await api.ok("DELETE", f"/calendars/primary/events/{inside[1]['id']}")
    await api.insert(body("e8", days=8))
    await api.insert(body("far future", days=500))  # changes beyond the window are news too
    changes = await sync(pipe)
    notes = await stream.new()
    assert sorted(kinds(notes)) == sorted(
        [
            ("event_updated", "e1 moved"),
            ("event_deleted", inside[1]["id"]),
            ("event_created", "e8"),
            ("event_created", "far future"),
        ]
    )
    assert (changes["created"], changes["updated"], changes["deleted"]) == (2, 1, 1)
    deleted = next(n for n in notes if isinstance(n, EventDeleted))
    assert deleted.status == "cancelled"
    updated = next(n for n in notes if isinstance(n, EventUpdated))
    assert set(updated.event) <= {
        "id",
        "status",
        "eventType",
        "summary",
        "location",
        "start",
        "end",
        "recurringEventId",
        "originalStartTime",
        "updated",
        "etag",
        "htmlLink",
        "attendees",
        "organizer",
    }  # the basic projection


async def test_two_calendars_of_one_user_keep_separate_cursors(
    pipe: Pipeline, api: CalendarApi
) -> None:
    stream = Stream(pipe)
    account = pipe.emulator.store.account(EMAIL)
    team = "team@group.calendar.google.com"
    account.calendars[team] = Calendar(id=team, owner=account.email, summary="Team")
    other = {"id": team}
    await synced(pipe, team)
    await api.insert(body("mine"))
    await api.insert(body("team"), calendar=other["id"])
    await sync(pipe)
    await sync(pipe, other["id"])
    assert sorted((n.calendar_id, n.event["summary"]) for n in await stream.new()) == [
        ("primary", "mine"),
        (other["id"], "team"),
    ]
    await api.insert(body("team 2"), calendar=other["id"])
    await sync(pipe)  # the primary calendar has nothing new
    assert await stream.new() == []
    await sync(pipe, other["id"])
    assert kinds(await stream.new()) == [("event_created", "team 2")]


async def test_an_expired_token_mid_listing_reports_every_deletion_of_the_gap_once(
    pipe: Pipeline, api: CalendarApi
) -> None:
    stream = Stream(pipe)
    events = [await api.insert(body(f"e{n}", days=n)) for n in range(1, 10)]
    await sync(pipe)
    await stream.new()
    # While the service is away: changes, deletions, and enough of them for several pages.
    for event in events[:4]:
        await api.ok("PATCH", f"/calendars/primary/events/{event['id']}", body={"summary": "x"})
    gone = [e["id"] for e in events[6:]]
    for event_id in gone:
        await api.ok("DELETE", f"/calendars/primary/events/{event_id}")
    calendar = pipe.emulator.store.account(EMAIL).calendars[EMAIL]
    # The sync reads the first page of changes; Google expires the token while it asks for
    # the second: 410 mid-listing.
    pipe.emulator.faults.add(FaultRule(endpoint="events.list", count=1))
    pipe.emulator.faults.add(FaultRule(endpoint="events.list", latency_ms=300, count=1))
    running = asyncio.create_task(sync(pipe))
    await wait_until(lambda: pipe.emulator.faults.injected == 1)
    calendar.expire_sync_tokens()
    result = await running
    notes = await stream.new()
    assert sorted(n.event_id for n in notes if isinstance(n, EventDeleted)) == sorted(gone)
    assert sorted(n.event["summary"] for n in notes if isinstance(n, EventUpdated)) == ["x"] * 4
    assert result["full"]
    assert result["deleted"] == len(gone)
    await sync(pipe)
    assert await stream.new() == []  # and nothing is reported twice


async def test_a_state_of_another_format_is_dropped_and_said_so(
    pipe: Pipeline, api: CalendarApi
) -> None:
    stream = Stream(pipe)
    await api.insert(body("one"))
    await sync(pipe)
    await stream.new()
    key = pipe.keys.sync_state("u1", "primary")
    await pipe.redis.set(key, (await pipe.redis.get(key)).replace(b'"v":1', b'"v":99'))
    result = await sync(pipe)
    notes = await stream.new()
    assert isinstance(notes[0], SyncReset)
    assert notes[0].reason == "state_format"
    assert kinds(notes[1:]) == [("event_created", "one")]
    assert result["reset"] == "state_format"
    assert STATE_VERSION == 1


async def test_unknown_event_types_pass_through_and_a_filter_applies(
    emulator: Emulator, redis: Redis, redis_prefix: str, api: CalendarApi
) -> None:
    await api.insert(body("focus", eventType="focusTime"))
    await api.insert(body("plain"))
    # A type this service has never heard of, as Google may add one any day.
    calendar = emulator.store.account(EMAIL).calendars[EMAIL]
    plain = next(e for e in calendar.events.values() if e.resource["summary"] == "plain")
    plain.resource["eventType"] = "someTypeGoogleAddsLater"
    calendar.touch(plain)
    async with pipeline(emulator, redis, redis_prefix) as everything:
        await everything.link("u1")
        await synced(everything, "primary")
        await everything.start_worker()
        stream = Stream(everything)
        await sync(everything)
        types = sorted(n.event.get("eventType") for n in await stream.new())
    assert types == ["focusTime", "someTypeGoogleAddsLater"]
    async with pipeline(
        emulator, redis, redis_prefix, sync_event_types=("focusTime",)
    ) as only_focus:
        await only_focus.link("u1")  # these settings have a token key of their own
        await only_focus.start_worker()
        stream = Stream(only_focus)
        await stream.new()  # what the first sync said
        result = await sync(only_focus)
        notes = await stream.new()
    assert result["reset"] == "event_types_changed"
    assert [n.type for n in notes] == ["sync_reset", "event_created"]
    assert notes[1].event["summary"] == "focus"


async def test_two_syncs_of_one_calendar_at_once_announce_a_change_once(
    pipe: Pipeline, api: CalendarApi
) -> None:
    stream = Stream(pipe)
    await sync(pipe)
    await api.insert(body("new"))
    # Both list the change before either applies it: the later one must stop, not announce.
    pipe.emulator.faults.add(FaultRule(endpoint="events.list", latency_ms=200))
    async with open_services(resolved(pipe.settings), redis=pipe.redis) as s:
        runs = [s.sync.run("u1", "primary") for _ in range(2)]
        outcomes = await asyncio.gather(*runs, return_exceptions=True)
        assert sum(isinstance(o, Throttled) for o in outcomes) == 1, outcomes
        assert sum(isinstance(o, SyncOutcome) for o in outcomes) == 1, outcomes
        assert kinds(await stream.new()) == [("event_created", "new")]
        # Nothing changed since: both run to the end, and announce nothing.
        quiet = await asyncio.gather(*(s.sync.run("u1", "primary") for _ in range(2)))
    assert [(o.created, o.updated, o.deleted) for o in quiet] == [(0, 0, 0), (0, 0, 0)]
    assert await stream.new() == []


@pytest.mark.parametrize(
    ("scopes", "code"),
    [(None, None), ((CALENDAR_LIST_READONLY,), "scope_missing")],
    ids=["ok", "must-link-again"],
)
async def test_a_sync_gives_back_its_lease_with_its_result_and_one_that_needs_a_new_link_pauses(
    pipe: Pipeline, scopes: tuple[str, ...] | None, code: str | None
) -> None:
    schedule = SyncSchedule(pipe.redis, pipe.keys)
    await schedule.add_user("u1")  # the calendar list is scheduled too
    calendar, listing = member("u1", "primary"), member("u1")
    job_id = f"sync-{uuid.uuid4().hex}"
    # The lease the scheduler gives the job it enqueues (worker.scheduler).
    await pipe.redis.zadd(pipe.keys.sync_running, {calendar: time.time() * 1000 + 3_600_000})
    await pipe.redis.hset(pipe.keys.sync_jobs, calendar, job_id)  # type: ignore[misc]
    if scopes is not None:
        await pipe.link("u1", scopes=scopes)  # a grant that no longer covers reading events
    result = await pipe.client.run(
        "sync_calendar", {"user_id": "u1", "calendar_id": "primary"}, job_id=job_id, timeout=20
    )
    assert (result.error.code if result.error else None) == code
    assert await pipe.redis.zscore(pipe.keys.sync_running, calendar) is None
    assert await pipe.redis.hget(pipe.keys.sync_jobs, calendar) is None  # type: ignore[misc]
    due = [await pipe.redis.zscore(pipe.keys.sync_due, m) for m in (calendar, listing)]
    synced_calendars = await schedule.calendars("u1")
    if code is None:
        assert None not in due
        assert synced_calendars == {"primary"}
    else:  # nothing of the user's is synced until they link again
        assert due == [None, None]
        assert synced_calendars == set()
