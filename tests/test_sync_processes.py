"""Sync with real worker processes: a sync killed mid-listing resumes without publishing
anything twice; 1,000 linked users scheduled by two workers are each synced exactly once per
round, and a round without changes costs one Google request per calendar."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from emulator.faults import FaultRule
from emulator.seeding import SyntheticEvents, SyntheticGrant, seed_synthetic
from gcal.crypto import Cipher
from gcal.notifications import EventCreated, parse_notification
from gcal.sync_schedule import SyncSchedule, member
from gcal.tokens import StoredTokens, TokenStore
from jobs.registry import default_scopes
from tests.harness import Emulator
from tests.pipeline import Pipeline, WorkerProcess, pipeline, wait_until, wait_until_async
from tests.services import CLIENT_ID

EMAIL = "alice@example.com"


def events(count: int) -> SyntheticEvents:
    """``count`` one-hour events, an hour apart, from an hour from now."""
    hour = dt.timedelta(hours=1)
    start = dt.datetime.now(dt.UTC) + hour
    return SyntheticEvents(count=count, start=start, spacing=hour, duration=hour)


async def created(pipe: Pipeline) -> list[str]:
    """The ids of every event_created on the stream."""
    ids = []
    for _, fields in await pipe.redis.xrange(pipe.keys.notification_stream):
        note = parse_notification(fields[b"json"])
        if isinstance(note, EventCreated):
            ids.append(note.event_id)
    return ids


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix, sync_page_size=2, job_timeout=30.0) as p:
        await p.link("u1")
        yield p


async def test_a_sync_killed_mid_listing_resumes_and_publishes_nothing_twice(
    pipe: Pipeline,
) -> None:
    seed_synthetic(
        pipe.emulator.store,
        emails=["bob@example.com"],
        spec=events(9),
        grant=None,
    )
    await pipe.link("u1", "bob@example.com")
    await SyncSchedule(pipe.redis, pipe.keys).add_calendars("u1", ["bob@example.com"])
    # Pages 1 and 2 are answered; the third request is held while the worker is killed.
    pipe.emulator.faults.add(FaultRule(endpoint="events.list", count=2))
    pipe.emulator.faults.add(FaultRule(endpoint="events.list", latency_ms=3000, count=1))
    await pipe.client.enqueue("sync_calendar", {"user_id": "u1", "calendar_id": "bob@example.com"})
    worker = await WorkerProcess(pipe.settings).start()
    await wait_until(lambda: pipe.emulator.faults.injected == 1)
    worker.signal(signal.SIGKILL)
    assert (await worker.wait())[0] == -signal.SIGKILL
    before = await created(pipe)
    assert len(before) == 4  # two pages of two, published and checkpointed
    pipe.emulator.faults.clear()

    await pipe.start_worker()
    resumed = await pipe.run("sync_calendar", {"user_id": "u1", "calendar_id": "bob@example.com"})
    assert resumed.ok, resumed
    assert resumed.data is not None
    assert resumed.data["resumed"] is True
    after = await created(pipe)
    assert len(after) == 9
    assert len(set(after)) == 9  # every event once


@pytest.mark.timeout(150)  # 4,000 jobs through two worker processes on a shared machine
async def test_a_thousand_users_two_workers_each_calendar_synced_once_per_round(
    emulator: Emulator, redis: Redis, redis_prefix: str
) -> None:
    users = 1000
    async with pipeline(
        emulator,
        redis,
        redis_prefix,
        sync_enabled=True,
        sync_tick_seconds=0.05,
        sync_interval_seconds=3600,
        sync_calendar_list_interval_seconds=3600,
        worker_max_jobs=100,
    ) as pipe:
        emails = [f"user{n}@example.com" for n in range(users)]
        minted = seed_synthetic(
            emulator.store,
            emails=emails,
            spec=events(3),
            grant=SyntheticGrant(CLIENT_ID, frozenset(default_scopes())),
        )
        store = TokenStore(pipe.redis, pipe.keys, Cipher(pipe.settings.token_keys))
        schedule = SyncSchedule(pipe.redis, pipe.keys)
        now = dt.datetime.now(dt.UTC)

        async def link(n: int, email: str) -> None:
            tokens = StoredTokens(
                access_token=minted[email]["access_token"],
                refresh_token=minted[email]["refresh_token"],
                expires_at=now + dt.timedelta(hours=1),
                scopes=frozenset(default_scopes()),
                email=email,
                linked_at=now,
            )
            await store.put(f"u{n}", tokens)
            await schedule.add_user(f"u{n}")  # what a link does

        await asyncio.gather(*(link(n, email) for n, email in enumerate(emails)))
        requests = emulator.store.requests
        workers = [await WorkerProcess(pipe.settings).start() for _ in range(2)]
        try:

            async def settled() -> bool:
                busy = await pipe.redis.zcard(pipe.keys.sync_running)
                queued = await pipe.redis.zcard(pipe.keys.queue)
                return bool(busy == 0 and queued == 0)

            await wait_until(lambda: requests["events.list"] >= users, within=120)
            await wait_until_async(settled)
            assert requests["calendarList.list"] == users  # each list read once
            assert requests["events.list"] == users  # each calendar synced once
            assert len(await created(pipe)) == 3 * users

            # A round without changes: one request per calendar, nothing announced.
            await pipe.redis.zadd(
                pipe.keys.sync_due, {member(f"u{n}", email): 0 for n, email in enumerate(emails)}
            )
            await wait_until(lambda: requests["events.list"] >= 2 * users, within=120)
            await wait_until_async(settled)
            assert requests["events.list"] == 2 * users
            assert len(await created(pipe)) == 3 * users
        finally:
            for worker in workers:
                worker.signal(signal.SIGTERM)
            for worker in workers:
                assert (await worker.wait())[0] == 0
