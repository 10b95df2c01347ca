"""Scheduled sync and push, end to end: a linked user's calendars are synced by the workers'
scheduler, and a change at the emulator reaches the notifications stream as one change event,
by polling and, separately, by push through auth_web's webhook."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from gcal.notifications import EventCreated, parse_notification
from gcal.oauth import TokenGrant
from gcal.services import Services
from gcal.sync_schedule import SyncSchedule, member
from jobs.registry import default_scopes, resolved
from tests.conftest import MakeAuthWeb
from tests.harness import CALENDAR, CalendarApi, Emulator
from tests.pipeline import Pipeline, pipeline, wait_until
from tests.services import CLIENT_ID, AuthWeb
from worker.scheduler import Scheduler

EMAIL = "alice@example.com"
SOON = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
FAST = {
    "sync_enabled": True,
    "sync_tick_seconds": 0.05,
    "sync_calendar_list_interval_seconds": 3600,
}


def event(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": SOON.isoformat()},
        "end": {"dateTime": (SOON + dt.timedelta(hours=1)).isoformat()},
    }


async def announced(pipe: Pipeline, summary: str, *, within: float = 15) -> list[EventCreated]:
    """Wait until the stream holds an event_created for ``summary``; all of them."""
    async with asyncio.timeout(within):
        while True:  # the stream is written by the worker; poll it
            found = []
            for _, fields in await pipe.redis.xrange(pipe.keys.notification_stream):
                note = parse_notification(fields[b"json"])
                if isinstance(note, EventCreated) and note.event.get("summary") == summary:
                    found.append(note)
            if found:
                return found
            await asyncio.sleep(0.02)


async def link(pipe: Pipeline, user_id: str = "u1", email: str = EMAIL) -> None:
    """Link as the consent callback does (Accounts.link), so the schedule hears of it."""
    access, refresh = pipe.emulator.grant(email, default_scopes(), client_id=CLIENT_ID)
    grant = TokenGrant.model_validate(
        {
            "access_token": access,
            "refresh_token": refresh,
            "expires_at": dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
            "scopes": frozenset(default_scopes()),
        }
    )
    async with aiohttp.ClientSession() as http:
        services = Services.build(resolved(pipe.settings), pipe.redis, http)
        await services.accounts.link(user_id, grant)


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[CalendarApi]:
    # The user's own calendar app changing their calendars behind the service's back: it has
    # full access, the service only the scopes it links with.
    access, _ = emulator.grant(EMAIL, (CALENDAR,))
    async with aiohttp.ClientSession() as http:
        yield CalendarApi(http, emulator, access)


async def test_a_new_link_is_synced_at_once_then_changes_arrive_by_polling(
    emulator: Emulator, redis: Redis, redis_prefix: str, api: CalendarApi
) -> None:
    await api.insert(event("before linking"))
    async with pipeline(emulator, redis, redis_prefix, **FAST, sync_interval_seconds=0.5) as pipe:
        await link(pipe)
        assert await pipe.redis.zscore(pipe.keys.sync_due, member("u1")) == 0  # due now
        await pipe.start_worker()
        first = await announced(pipe, "before linking")
        assert [n.calendar_id for n in first] == [EMAIL]  # the primary, found in the list
        started = time.monotonic()
        await api.insert(event("made later"))
        later = await announced(pipe, "made later")
        took = time.monotonic() - started
    assert len(later) == 1
    assert took < 0.5 + 2  # bounded by the polling interval


async def test_a_change_reaches_subscribers_by_push_within_a_second(
    emulator: Emulator,
    redis: Redis,
    redis_prefix: str,
    api: CalendarApi,
    make_auth_web: MakeAuthWeb,
) -> None:
    auth_web: AuthWeb = await make_auth_web()
    webhook = f"{auth_web.url}/webhooks/google/calendar"
    settings = {**FAST, "sync_push_interval_seconds": 3600, "push_webhook_url": webhook}
    async with pipeline(emulator, redis, auth_web.settings.redis_prefix, **settings) as pipe:
        await link(pipe)
        await pipe.start_worker()
        await api.insert(event("first"))
        await announced(pipe, "first")
        channels = emulator.store.channels
        await wait_until(lambda: bool(channels))  # the sync opened a channel after listing
        started = time.monotonic()
        await api.insert(event("pushed"))
        pushed = await announced(pipe, "pushed", within=5)
        took = time.monotonic() - started
    assert len(pushed) == 1
    assert took < 2  # polling would take an hour here
    [channel] = channels.values()
    assert channel.delivered >= 2  # the "sync" message, then the change


async def test_two_deployments_sharing_one_redis_each_sync_their_own_users(
    emulator: Emulator, redis: Redis, redis_prefix: str
) -> None:
    # Another deployment (another prefix) on the same Redis server: arq's own job keys are
    # not prefixed, so the jobs each scheduler enqueues must not take the other's ids.
    other_prefix = f"{redis_prefix}-b"
    for email in (EMAIL, "bob@example.com"):
        access, _ = emulator.grant(email, (CALENDAR,))
        async with aiohttp.ClientSession() as http:
            await CalendarApi(http, emulator, access).insert(event(f"of {email}"))
    try:
        async with (
            pipeline(emulator, redis, redis_prefix, **FAST) as first,
            pipeline(emulator, redis, other_prefix, **FAST) as second,
        ):
            await link(first, "alice")
            await link(second, "bob", "bob@example.com")
            await first.start_worker()
            await second.start_worker()
            assert len(await announced(first, f"of {EMAIL}")) == 1
            assert len(await announced(second, "of bob@example.com")) == 1
    finally:
        other = [k async for k in redis.scan_iter(match=f"{other_prefix}:*")]
        if other:
            await redis.delete(*other)


async def test_a_sync_asked_for_a_calendar_the_workers_do_not_sync_announces_nothing_twice(
    emulator: Emulator,
    redis: Redis,
    redis_prefix: str,
    api: CalendarApi,
    make_auth_web: MakeAuthWeb,
) -> None:
    auth_web: AuthWeb = await make_auth_web()
    webhook = f"{auth_web.url}/webhooks/google/calendar"
    await api.insert(event("already announced"))
    async with pipeline(
        emulator, redis, auth_web.settings.redis_prefix, **FAST, push_webhook_url=webhook
    ) as pipe:
        await link(pipe)
        await pipe.start_worker()
        await announced(pipe, "already announced")  # under the calendar list's id, the email
        # A service asks for a sync now, with the job's default calendar id ("primary").
        result = await pipe.run("sync_calendar", {"user_id": "u1"})
        assert len(await announced(pipe, "already announced")) == 1
        assert result.error is not None
        assert result.error.code == "not_found"
        assert (await pipe.run("disconnect", {"user_id": "u1"})).ok
        left = [k async for k in redis.scan_iter(match=f"{pipe.keys.prefix}:sync:u1:*")]
    assert left == []  # the disconnect forgot every calendar's sync state
    assert emulator.store.channels == {}  # and stopped every push channel at Google


async def test_a_scheduler_tick_enqueues_what_is_due_and_wakes_the_workers(
    emulator: Emulator, redis: Redis, redis_prefix: str
) -> None:
    async with pipeline(emulator, redis, redis_prefix) as pipe:
        schedule = SyncSchedule(pipe.redis, pipe.keys)
        await schedule.add_calendars("u1", [EMAIL])
        scheduler = Scheduler(pipe.redis, pipe.keys, pipe.settings)
        async with pipe.redis.pubsub() as pubsub:
            await pubsub.subscribe(pipe.keys.queue_wake)
            assert await scheduler.tick() == 1
            assert await scheduler.tick() == 0  # its lease is held: not twice
            woken = [m async for m in _messages(pubsub, 1)]
        [job_id] = await pipe.redis.zrange(pipe.keys.queue, 0, -1)
        payload = json.loads(await pipe.redis.get(b"arq:job:" + job_id))
        assert (payload["f"], payload["k"]) == (
            "sync_calendar",
            {"user_id": "u1", "calendar_id": EMAIL},
        )
        assert woken == [b""]


async def _messages(pubsub: Any, count: int) -> AsyncIterator[bytes]:
    async with asyncio.timeout(5):
        async for message in pubsub.listen():
            if message["type"] == "message":
                yield message["data"]
                count -= 1
                if count == 0:
                    return
