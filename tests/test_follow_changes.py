"""A change consumer in another language: ``examples/follow-changes.sh`` (redis-cli only)
follows the notifications stream in a consumer group, against a real worker and the emulator,
as ``docs/contract.md`` tells non-Python services to do it.

Changes are made at the emulator over HTTP, as another Google client would; the sync runs as
the ``sync_calendar`` job through the real queue and an in-loop worker; the script runs as a
subprocess, and what it prints is read as it comes. Without redis-cli these tests fail,
never skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from gcal.notifications import EventCreated, EventDeleted, EventUpdated, parse_notification
from gcal.sync_schedule import SyncSchedule
from tests.harness import CALENDAR, CalendarApi, Emulator
from tests.pipeline import Pipeline, pipeline, wait_until, wait_until_async

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "follow-changes.sh"
EMAIL = "alice@example.com"  # the primary calendar's id in the calendar list
GROUP, CONSUMER = "billing", "billing-1"
SOON = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)


def body(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": SOON.isoformat()},
        "end": {"dateTime": (SOON + dt.timedelta(hours=1)).isoformat()},
    }


pytestmark = pytest.mark.usefixtures("redis_cli")


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix) as p:
        await p.link("u1")
        await SyncSchedule(p.redis, p.keys).add_calendars("u1", [EMAIL])  # as its list would
        await p.start_worker()
        yield p


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[CalendarApi]:
    access, _ = emulator.grant(EMAIL, (CALENDAR,))
    async with aiohttp.ClientSession() as http:
        yield CalendarApi(http, emulator, access)


async def sync(p: Pipeline) -> None:
    result = await p.run("sync_calendar", {"user_id": "u1", "calendar_id": EMAIL})
    assert result.ok, result


@dataclass
class Follower:
    """The script running; what it has printed so far, line by line."""

    proc: asyncio.subprocess.Process
    lines: list[str] = field(default_factory=list)
    stderr: bytes = b""
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    def start_reading(self) -> None:
        async def out() -> None:
            assert self.proc.stdout is not None
            while line := await self.proc.stdout.readline():
                self.lines.append(line.decode().rstrip("\n"))

        async def err() -> None:
            assert self.proc.stderr is not None
            self.stderr = await self.proc.stderr.read()

        self._readers = [asyncio.create_task(out()), asyncio.create_task(err())]

    def changes(self) -> list[Any]:
        return [parse_notification(line) for line in self.lines]

    async def printed(self, count: int) -> None:
        await wait_until(lambda: len(self.lines) >= count or self.proc.returncode is not None)
        assert len(self.lines) >= count, (self.lines, self.stderr)

    async def finished(self, within: float = 20) -> int:
        """Its exit status, once it has exited by itself (killed after ``within`` s)."""
        try:
            async with asyncio.timeout(within):
                await self.proc.wait()
        except TimeoutError:
            await self.stop()
            pytest.fail(f"{SCRIPT.name} did not exit within {within}s: {self.lines}")
        await asyncio.gather(*self._readers)
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def stop(self) -> int:
        """SIGTERM, as a service manager stops it; its exit status."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.finished()


@contextlib.asynccontextmanager
async def follow(p: Pipeline, **env: str) -> AsyncIterator[Follower]:
    """Run the script (its group created before this yields); ``env`` adds to its environment."""
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "REDIS_URL": str(p.settings.redis_url),
        "GCAL_PREFIX": p.settings.redis_prefix,
        "GROUP": GROUP,
        "CONSUMER": CONSUMER,
        "BLOCK_MS": "200",
        **env,
    }
    proc = await asyncio.create_subprocess_exec(
        "sh",
        str(SCRIPT),
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    follower = Follower(proc)
    follower.start_reading()
    try:
        await wait_until_async(lambda: group_exists(p))
        yield follower
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def group(p: Pipeline) -> dict[str, Any] | None:
    if not await p.redis.exists(p.keys.notification_stream):
        return None
    for info in await p.redis.xinfo_groups(p.keys.notification_stream):
        if info["name"].decode() == GROUP:
            return dict(info)
    return None


async def group_exists(p: Pipeline) -> bool:
    return await group(p) is not None


async def caught_up(p: Pipeline) -> bool:
    """The group has read every entry of the stream and acknowledged them all."""
    info = await group(p)
    stream = await p.redis.xinfo_stream(p.keys.notification_stream)
    return (
        info is not None
        and info["pending"] == 0
        and info["last-delivered-id"] == stream["last-generated-id"]
    )


async def test_each_change_is_printed_once_and_a_restart_resumes_where_it_stopped(
    pipe: Pipeline, api: CalendarApi
) -> None:
    async with follow(pipe) as first:
        event = await api.insert(body("Planning"))
        await sync(pipe)
        assert (await pipe.run("list_calendars", {"user_id": "u1"})).ok  # a job_completed
        await first.printed(1)
        await wait_until_async(lambda: caught_up(pipe))  # read and acknowledged, all of it
        assert await first.stop() == 143
    [created] = first.changes()
    assert isinstance(created, EventCreated)
    assert (created.calendar_id, created.event_id) == (EMAIL, event["id"])
    assert created.event["summary"] == "Planning"

    # While it is stopped, the event changes.
    path = f"/calendars/primary/events/{event['id']}"
    await api.ok("PATCH", path, body={"summary": "Planning (moved)"})
    await sync(pipe)
    async with follow(pipe, MAX="1") as again:
        assert await again.finished() == 0, again.stderr
    [updated] = again.changes()  # what came meanwhile, and nothing acknowledged before
    assert isinstance(updated, EventUpdated)
    assert updated.event_id == event["id"]
    assert updated.event["summary"] == "Planning (moved)"
    assert await caught_up(pipe)


async def test_other_types_are_skipped_and_an_entry_read_but_never_acknowledged_comes_again(
    pipe: Pipeline, api: CalendarApi
) -> None:
    async with follow(pipe, TYPES="event_deleted", MAX="1") as deletions:
        event = await api.insert(body("Short-lived"))
        await sync(pipe)
        await api.ok("DELETE", f"/calendars/primary/events/{event['id']}")
        await sync(pipe)
        assert await deletions.finished() == 0, deletions.stderr
    [deleted] = deletions.changes()
    assert isinstance(deleted, EventDeleted)
    assert deleted.event_id == event["id"]
    assert await caught_up(pipe)  # the event_created was acknowledged without being printed

    # A run killed after reading an entry and before acknowledging it (as this consumer).
    await api.insert(body("Read, never acknowledged"))
    await sync(pipe)
    stream = pipe.keys.notification_stream
    assert await pipe.redis.xreadgroup(GROUP, CONSUMER, {stream: ">"})
    assert not await caught_up(pipe)
    async with follow(pipe, MAX="1") as restarted:
        assert await restarted.finished() == 0, restarted.stderr
    [created] = restarted.changes()
    assert isinstance(created, EventCreated)
    assert created.event["summary"] == "Read, never acknowledged"
    assert await caught_up(pipe)


async def test_usage_and_redis_errors_exit_with_their_status(pipe: Pipeline) -> None:
    for env, status in (
        ({"START": "yesterday"}, 2),
        ({"TYPES": "event created"}, 2),
        ({"REDIS_URL": "redis://127.0.0.1:9/0"}, 3),  # nothing listens on port 9
    ):
        proc = await asyncio.create_subprocess_exec(
            "sh",
            str(SCRIPT),
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "REDIS_URL": "redis://x:1/0", **env},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(20):
            out, _ = await proc.communicate()
        assert (proc.returncode, out) == (status, b""), env
    assert not await group_exists(pipe)
