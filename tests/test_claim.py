"""How a worker takes jobs off the queue: one script reads the due ids and claims those no
worker is running (``worker.arq_worker._CLAIM``). Workers here wait up to 30 s between reads
unless woken, so a job that runs within the tests' timeouts ran because it was claimed at once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from arq.constants import in_progress_key_prefix, job_key_prefix
from redis.asyncio import Redis

from tests.harness import Emulator
from tests.pipeline import Pipeline, pipeline, wait_until_async

SLOW_POLL = {"worker_poll_delay": 30.0, "worker_max_jobs": 1}


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix) as p:
        await p.link("u1")
        yield p


async def start_worker(pipe: Pipeline) -> None:
    """A worker with one slot, once it listens for wakes (then only a wake makes it read)."""
    await pipe.start_worker(**SLOW_POLL)

    async def listening() -> bool:
        subscribed: list[tuple[bytes, int]] = await pipe.redis.pubsub_numsub(pipe.keys.queue_wake)
        return subscribed[0][1] >= 1

    await wait_until_async(listening, within=10)


async def test_a_job_running_elsewhere_is_skipped_and_taken_when_its_mark_is_gone(
    pipe: Pipeline,
) -> None:
    # Another worker runs `elsewhere` (its in-progress mark is set); it is first in the queue.
    elsewhere = await pipe.client.enqueue("list_calendars", {"user_id": "u1"})
    mark = in_progress_key_prefix + elsewhere
    await pipe.redis.set(mark, b"1", px=60_000)
    await start_worker(pipe)

    after = await pipe.run("list_calendars", {"user_id": "u1"}, timeout=10)

    assert after.ok
    assert await pipe.redis.get(pipe.keys.result(elsewhere)) is None
    assert await pipe.redis.zscore(pipe.keys.queue, elsewhere) is not None
    assert await pipe.redis.get(mark) == b"1"  # not claimed over the other worker
    # That worker stopped; its mark expired: the job is run here (at-least-once).
    await pipe.redis.delete(mark)
    await pipe.redis.publish(pipe.keys.queue_wake, b"")
    assert (await pipe.client.result(elsewhere, timeout=10)).ok


async def test_refused_ids_take_no_slot_from_the_jobs_behind_them(pipe: Pipeline) -> None:
    # Ids no job can have, queued ahead of a good job, for a worker with one slot.
    now_ms = int(time.time() * 1000)
    refused = [b"not a job id %d" % n for n in range(3)] + [b"\xff\xfe"]
    for n, raw in enumerate(refused):
        await pipe.redis.set(job_key_prefix.encode() + raw, b"{}", px=60_000)
        await pipe.redis.zadd(pipe.keys.queue, {raw: now_ms - 1000 + n})
    await start_worker(pipe)

    good = await pipe.run("list_calendars", {"user_id": "u1"}, timeout=10)

    assert good.ok
    for raw in refused:
        assert await pipe.redis.zscore(pipe.keys.queue, raw) is None
        assert await pipe.redis.exists(in_progress_key_prefix.encode() + raw) == 0
    answered = await pipe.client.result("not a job id 0", timeout=1)
    assert answered.error is not None
    assert answered.error.code == "invalid_request"
    letters = await pipe.redis.xrange(pipe.keys.dead_letters)
    assert [f[b"job_id_hex"] for _, f in letters] == [b"fffe"]
