"""How a worker takes jobs off the queue: one script reads the due ids and claims those no
worker is running (``worker.arq_worker._CLAIM``). Workers here wait up to 30 s between reads
unless woken, so a job that runs within the tests' timeouts ran because it was claimed at once."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from arq.constants import abort_jobs_ss, in_progress_key_prefix, job_key_prefix, retry_key_prefix
from redis.asyncio import Redis

from tests.harness import Emulator
from tests.pipeline import Pipeline, pipeline, wait_until_async
from worker.arq_worker import _CLAIM, _CLAIMED_FIELDS
from worker.first_read import TRY_COUNT_EXPIRY_S

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
        assert await pipe.redis.exists(retry_key_prefix.encode() + raw) == 0
    answered = await pipe.client.result("not a job id 0", timeout=1)
    assert answered.error is not None
    assert answered.error.code == "invalid_request"
    letters = await pipe.redis.xrange(pipe.keys.dead_letters)
    assert [f[b"job_id_hex"] for _, f in letters] == [b"fffe"]


async def transactions(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_multi", {}).get("calls", 0))


async def test_a_job_takes_one_transaction_its_first_read_is_in_the_claim(pipe: Pipeline) -> None:
    await start_worker(pipe)
    assert (await pipe.run("list_calendars", {"user_id": "u1"}, timeout=10)).ok  # token cached
    before = await transactions(pipe.redis)

    for _ in range(5):
        assert (await pipe.run("list_calendars", {"user_id": "u1"}, timeout=10)).ok

    # The one that ends each job, with its result; arq's own first read would be a second.
    assert await transactions(pipe.redis) - before == 5


class Claim:
    """The worker's claim script, called as the worker calls it, on one test's queue."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis, self.prefix, self.queue = redis, prefix, f"{prefix}:queue"
        self.script = redis.register_script(_CLAIM)

    def id(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    async def queue_ids(self, *names: str) -> None:
        await self.redis.zadd(self.queue, {self.id(name): n for n, name in enumerate(names)})

    async def __call__(self, *, abort_set: str = "") -> dict[str, list[object]]:
        """Each claimed job's first read: [payload, try, aborted, error]."""
        args: list[str | int] = [in_progress_key_prefix, 10, 60_000, 10, 10]
        args += [job_key_prefix, retry_key_prefix, abort_set, TRY_COUNT_EXPIRY_S]
        waiting, claimed = await self.script(keys=[self.queue], args=args)
        assert waiting == 0
        n = _CLAIMED_FIELDS
        fields = [claimed[at : at + n] for at in range(0, len(claimed), n)]
        return {raw.decode(): [*rest] for raw, _score, *rest in fields}


@pytest.fixture
async def claim(redis: Redis, redis_prefix: str) -> AsyncIterator[Claim]:
    yield Claim(redis, redis_prefix)
    found = [key async for key in redis.scan_iter(match=f"arq:*:{redis_prefix}-*")]
    if found:
        await redis.delete(*found)


async def test_the_claim_reads_each_job_as_arq_would(claim: Claim, redis: Redis) -> None:
    await redis.set(job_key_prefix + claim.id("a"), b"payload-a")
    await redis.set(retry_key_prefix + claim.id("a"), b"2")  # tried twice before
    await claim.queue_ids("a", "gone")

    read = await claim()

    assert read == {
        claim.id("a"): [b"payload-a", 3, 0, b""],
        claim.id("gone"): [b"", 1, 0, b""],  # no payload: arq answers "job expired"
    }
    ttl = await redis.ttl(retry_key_prefix + claim.id("a"))
    assert 88_400 - 10 < ttl <= 88_400  # arq's expiry of a try count


async def test_the_claim_takes_the_abort_mark_when_aborts_are_allowed(
    claim: Claim, redis: Redis, redis_prefix: str
) -> None:
    aborts = f"{redis_prefix}:{abort_jobs_ss}"
    await redis.zadd(aborts, {claim.id("a"): 1})
    await claim.queue_ids("a", "b")

    read = await claim(abort_set=aborts)

    assert [read[claim.id(name)][2] for name in ("a", "b")] == [1, 0]
    assert await redis.zcard(aborts) == 0


async def test_a_key_of_the_wrong_type_is_reported_as_multi_reports_it(
    claim: Claim, redis: Redis
) -> None:
    await redis.hset(job_key_prefix + claim.id("hash"), "f", "x")  # type: ignore[misc]
    await redis.set(job_key_prefix + claim.id("text"), b"payload")
    await redis.set(retry_key_prefix + claim.id("text"), b"many")
    await claim.queue_ids("hash", "text")

    read = await claim()

    payload, tries, _, error = read[claim.id("hash")]
    assert (payload, tries) == (b"", 1)  # the try is counted, as arq's MULTI counts it
    assert isinstance(error, bytes)
    assert error.startswith(b"WRONGTYPE")
    payload, tries, _, error = read[claim.id("text")]
    assert (payload, tries) == (b"payload", 0)
    assert isinstance(error, bytes)
    assert b"not an integer" in error
