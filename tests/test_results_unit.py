"""Fast unit tests (fakeredis, no server) of the contract's plumbing: recording a result,
waking a producer, decoding payloads, and the deferral arithmetic. The same behaviour is
tested end to end against the real Redis in tests/test_jobs.py."""

from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import AsyncIterator

import pytest
from fakeredis.aioredis import FakeRedis

from gcal.errors import RateLimited
from gcal.keys import RESULT_TTL_SECONDS, RedisKeys
from jobs import wire
from jobs.client import JobClient
from jobs.results import JobError, JobResult, record
from tests.pipeline import wait_until
from worker.runner import defer_seconds

KEYS = RedisKeys("unit")


@pytest.fixture
async def redis() -> AsyncIterator[FakeRedis]:
    client = FakeRedis()
    yield client
    await client.aclose()


def a_result(job_id: str = "job-1") -> JobResult:
    return JobResult.failure(
        job_id, "get_events", JobError.from_error(RateLimited("slow", retry_after=3))
    )


async def test_record_writes_the_result_then_announces_it(redis: FakeRedis) -> None:
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(KEYS.result_channel("job-1"))
        await record(redis, KEYS, a_result())
        message = None
        async for message in pubsub.listen():
            if message["type"] == "message":
                break
    assert message is not None
    note = json.loads(message["data"])
    assert (note["job_id"], note["ok"], note["error_code"]) == ("job-1", False, "rate_limited")
    stored = JobResult.model_validate_json(await redis.get(note["result_key"]))
    assert stored.error is not None
    assert stored.error.retry_after == 3
    assert 0 < await redis.ttl(KEYS.result("job-1")) <= RESULT_TTL_SECONDS
    [(_, fields)] = await redis.xrange(KEYS.notification_stream)
    assert json.loads(fields[b"json"])["job_id"] == "job-1"


async def test_a_waiting_producer_is_woken_by_the_notification(redis: FakeRedis) -> None:
    async with JobClient(redis, KEYS) as client:
        waiting = asyncio.create_task(client.result("job-2", timeout=5))
        await wait_until(lambda: "job-2" in client._waiters)  # subscribed, now waiting
        assert not waiting.done()
        await record(redis, KEYS, a_result("job-2"))
        result = await waiting
    assert result.job_id == "job-2"


async def test_a_result_already_there_is_returned_at_once(redis: FakeRedis) -> None:
    await record(redis, KEYS, a_result("job-3"))
    async with JobClient(redis, KEYS) as client:
        assert (await client.result("job-3", timeout=1)).job_id == "job-3"


async def test_waiting_for_a_job_that_never_ends_times_out(redis: FakeRedis) -> None:
    async with JobClient(redis, KEYS) as client:
        with pytest.raises(TimeoutError):
            await client.result("never", timeout=0.05)


async def test_enqueue_refuses_unknown_jobs_and_skips_finished_ids(redis: FakeRedis) -> None:
    async with JobClient(redis, KEYS) as client:
        with pytest.raises(ValueError, match="unknown job"):
            await client.enqueue("drop_tables", {})
        await record(redis, KEYS, a_result("done-1"))
        assert await client.enqueue("list_calendars", {"user_id": "u"}, job_id="done-1") == "done-1"
        assert await redis.zcard(KEYS.queue) == 0
        await client.enqueue("list_calendars", {"user_id": "u"}, job_id="new-1")
        assert await redis.zcard(KEYS.queue) == 1
        payload = wire.loads_job(await redis.get("arq:job:new-1"))
    assert (payload["f"], payload["a"], payload["k"]) == ("list_calendars", [], {"user_id": "u"})


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps({"f": "get_events", "a": [], "k": {}, "et": 0}),
        b"[]",
        b'{"a": [], "k": {}, "et": 0}',
        b'{"f": "get_events", "a": [], "k": ["u1"], "et": 0}',
        b'{"f": "get_events", "a": null, "k": {}, "et": 0}',
    ],
    ids=["pickle", "not-an-object", "no-name", "k-not-an-object", "a-not-a-list"],
)
def test_payloads_that_are_not_json_jobs_are_refused(payload: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json's and ours, both ValueError
        wire.loads_job(payload)


def test_deferral_is_jittered_exponential_capped_and_honours_retry_after() -> None:
    for attempt in range(1, 12):
        delay = defer_seconds(attempt, base=2.0, cap=300.0, retry_after=None)
        nominal = min(300.0, 2.0 * 2 ** (attempt - 1))
        assert 0.5 * nominal <= delay <= 1.5 * nominal
    assert defer_seconds(1, base=2.0, cap=300.0, retry_after=90.0) >= 90.0
