"""The Python client's enqueue, against this session's Redis: it writes what arq's own
``enqueue_job`` writes (so arq producers and ours mix on one queue), wakes idle workers, and
never queues an id twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from arq.connections import ArqRedis
from arq.utils import timestamp_ms
from redis.asyncio import Redis

from gcal.errors import RateLimited
from gcal.keys import RedisKeys
from gcal.notifications import Notifier
from gcal.tasks import cancel
from jobs import wire
from jobs.client import JobClient
from jobs.results import JobError, JobResult, record

ARGS: dict[str, Any] = {"user_id": "u1", "time_min": "2026-12-01T00:00:00Z"}


@pytest.fixture
async def keys(redis: Redis, redis_prefix: str) -> AsyncIterator[RedisKeys]:
    keys = RedisKeys(redis_prefix)
    yield keys
    # arq's own keys are not under the prefix; every id below starts with it.
    found = [key async for key in redis.scan_iter(match=f"arq:*:{redis_prefix}-*")]
    if found:
        await redis.delete(*found)


def an_id(keys: RedisKeys) -> str:
    return f"{keys.prefix}-{uuid.uuid4().hex[:8]}"


async def test_the_client_enqueues_what_arq_enqueues(redis: Redis, keys: RedisKeys) -> None:
    arq = ArqRedis(connection_pool=redis.connection_pool, job_serializer=wire.dumps)
    by_arq, by_client = an_id(keys), an_id(keys)
    # arq's own clock (it rounds the milliseconds): a truncated bound can be 1 ms behind it.
    before = timestamp_ms()
    await arq.enqueue_job("get_events", _job_id=by_arq, _queue_name=keys.queue, **ARGS)
    async with JobClient(redis, keys) as client:
        assert await client.enqueue("get_events", ARGS, job_id=by_client) == by_client
    after = timestamp_ms()

    ours = wire.loads(await redis.get(f"arq:job:{by_client}"))
    theirs = wire.loads(await redis.get(f"arq:job:{by_arq}"))
    assert before <= ours.pop("et") <= after
    theirs.pop("et")
    assert ours == theirs == {"t": None, "f": "get_events", "a": [], "k": ARGS}
    score = await redis.zscore(keys.queue, by_client)
    assert score is not None
    assert before <= score <= after
    ttls = [await redis.pttl(f"arq:job:{job_id}") for job_id in (by_client, by_arq)]
    assert all(86_400_000 - 60_000 < ttl <= 86_400_000 for ttl in ttls), ttls


async def test_an_enqueue_wakes_idle_workers(redis: Redis, keys: RedisKeys) -> None:
    async with redis.pubsub() as wake:
        await wake.subscribe(keys.queue_wake)
        assert (await wake.get_message(timeout=5) or {}).get("type") == "subscribe"
        async with JobClient(redis, keys) as client:
            await client.enqueue("get_events", ARGS, job_id=an_id(keys))
        message = await wake.get_message(timeout=5)
        assert message is not None
        assert (message["type"], message["channel"]) == ("message", keys.queue_wake.encode())


async def test_a_known_id_is_not_queued_again(redis: Redis, keys: RedisKeys) -> None:
    async with JobClient(redis, keys) as client:
        job_id = an_id(keys)
        same = [client.enqueue("get_events", {**ARGS, "n": n}, job_id=job_id) for n in range(20)]
        assert set(await asyncio.gather(*same)) == {job_id}
        assert await redis.zrange(keys.queue, 0, -1) == [job_id.encode()]
        first = wire.loads(await redis.get(f"arq:job:{job_id}"))
        assert await client.enqueue("get_events", ARGS, job_id=job_id) == job_id
        assert wire.loads(await redis.get(f"arq:job:{job_id}")) == first

        # A finished job (its arq copy gone after 5 minutes, ours kept 24 h) is not run again.
        done = an_id(keys)
        failure = JobError.from_error(RateLimited("slow", retry_after=3))
        await record(
            redis, keys, JobResult.failure(done, "get_events", failure), Notifier(redis, keys)
        )
        assert await client.enqueue("get_events", ARGS, job_id=done) == done
        assert await redis.zscore(keys.queue, done) is None
        assert await redis.get(f"arq:job:{done}") is None


async def test_enqueue_refuses_unknown_jobs_and_bad_ids(redis: Redis, keys: RedisKeys) -> None:
    async with JobClient(redis, keys) as client:
        with pytest.raises(ValueError, match="unknown job"):
            await client.enqueue("drop_tables", {}, job_id=an_id(keys))
        with pytest.raises(ValueError, match="job id"):
            await client.enqueue("list_calendars", {"user_id": "u"}, job_id="a:b")
    assert await redis.zcard(keys.queue) == 0


async def gets(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


async def test_a_run_reads_its_new_jobs_result_once(redis: Redis, keys: RedisKeys) -> None:
    """A client whose result subscription is confirmed awaits a job it has just queued
    without reading first: the result cannot be there before the job is, and its
    announcement reaches the client. One read a job, not two (and a known id is still read
    at once: ``test_jobs``' finished-id test)."""

    async def worker(wakes: Any) -> None:  # answers every job it is woken for
        async for message in wakes.listen():
            if message["type"] != "message":
                continue
            for job_id, _ in await redis.zpopmin(keys.queue, 100):
                data = JobError.from_error(RateLimited("slow", retry_after=1))
                result = JobResult.failure(job_id.decode(), "get_events", data)
                await record(redis, keys, result, Notifier(redis, keys))

    async with redis.pubsub() as wakes, JobClient(redis, keys) as client:
        await wakes.subscribe(keys.queue_wake)
        answering = asyncio.create_task(worker(wakes))
        try:
            first = await client.run("get_events", ARGS, job_id=an_id(keys), timeout=10)
            assert first.error is not None  # the first run may read first: not yet confirmed
            before = await gets(redis)
            for _ in range(5):
                job_id = an_id(keys)
                result = await client.run("get_events", ARGS, job_id=job_id, timeout=10)
                assert (result.job_id, result.ok) == (job_id, False)
            assert await gets(redis) - before == 5
        finally:
            await cancel(answering)
