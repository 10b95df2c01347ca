"""Fast unit tests (fakeredis, no server) of the contract's plumbing: recording a result,
waking a producer, decoding payloads, and the deferral arithmetic. The same behaviour is
tested end to end against the real Redis in tests/test_jobs.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pickle
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fakeredis.aioredis import FakeRedis
from pydantic import ValidationError

from gcal.errors import ERROR_CODES, GcalError, RateLimited
from gcal.keys import RESULT_TTL_SECONDS, RedisKeys
from gcal.notifications import JobCompleted, Notifier, parse_notification
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
        await record(redis, KEYS, a_result(), Notifier(redis, KEYS))
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
        await record(redis, KEYS, a_result("job-2"), Notifier(redis, KEYS))
        result = await waiting
    assert result.job_id == "job-2"


async def test_a_result_already_there_is_returned_at_once(redis: FakeRedis) -> None:
    await record(redis, KEYS, a_result("job-3"), Notifier(redis, KEYS))
    async with JobClient(redis, KEYS) as client:
        assert (await client.result("job-3", timeout=1)).job_id == "job-3"


async def test_waiting_for_a_job_that_never_ends_times_out(redis: FakeRedis) -> None:
    async with JobClient(redis, KEYS) as client:
        with pytest.raises(TimeoutError):
            await client.result("never", timeout=0.05)


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps({"f": "get_events", "a": [], "k": {}, "et": 0}),
        b"[]",
        b'{"a": [], "k": {}, "et": 0}',
        b'{"f": "get_events", "a": [], "k": ["u1"], "et": 0}',
        b'{"f": "get_events", "a": null, "k": {}, "et": 0}',
        b'{"f": "get_events", "a": [], "k": {}, "et": 0, "t": "1"}',
        b'{"f": "get_events", "a": [], "k": {}, "et": 0, "t": [1]}',
        b'{"f": "get_events", "a": [], "k": {}, "et": 0, "t": true}',
        b'{"f": "get_events", "a": [], "k": {}, "et": "0"}',
        b'{"f": "get_events", "a": [], "k": {}, "et": null}',
        b'{"f": "get_events", "a": [], "k": {}, "et": 1e300}',
        b'{"f": "get_events", "a": [], "k": {}, "et": -1000000000000000000}',
        b'{"f": "get_events\\ud800", "a": [], "k": {}, "et": 0}',
        b'{"f": "../get_events", "a": [], "k": {}, "et": 0}',
        b'{"f": "get_events", "a": [], "k": {"x": "'
        + b"y" * wire.MAX_PAYLOAD_BYTES
        + b'"}, "et": 0}',
    ],
    ids=[
        "pickle",
        "not-an-object",
        "no-name",
        "k-not-an-object",
        "a-not-a-list",
        "t-string",
        "t-list",
        "t-bool",
        "et-string",
        "et-null",
        "et-huge",
        "et-negative",
        "f-lone-surrogate",
        "f-not-a-name",
        "too-large",
    ],
)
def test_payloads_that_are_not_json_jobs_are_refused(payload: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json's and ours, both ValueError
        wire.loads_job(payload)


def test_a_job_s_arguments_travel_through_arq_as_one_opaque_value() -> None:
    payload = wire.loads_job(
        b'{"f": "create_event", "a": [], "k": {"ctx": 1, "user_id": "secret"}, "et": 0, "t": 2}'
    )
    arguments = payload["k"][wire.ARGUMENTS]
    assert list(payload["k"]) == [wire.ARGUMENTS]  # no argument name can collide with ctx
    assert arguments.named == {"ctx": 1, "user_id": "secret"}
    assert "secret" not in repr(payload)  # arq logs repr() of the arguments
    assert b"secret" not in wire.dumps({"k": payload["k"]})  # nor kept in arq's result record
    assert b"secret" not in wire.dumps_record({"k": payload["k"]})


@pytest.mark.parametrize(
    "record",
    [
        {"t": 1, "f": "get_events", "a": [], "k": {"arguments": wire.Arguments([], {})},
         "et": 1764556800000, "s": True, "r": {"ok": True, "result_key": "gcal:result:j-1"},
         "st": 1764556800001, "ft": 1764556800009, "q": "gcal:queue", "id": "j-1"},
        {"s": False, "r": ValueError("bad"), "et": -(10**300), "q": "gcal:queue"},
        {"r": {"at": dt.datetime(2026, 12, 1, 3, 0, tzinfo=dt.UTC), "tags": ("x", "ü")}},
    ],
    ids=["arq-record", "huge-enqueue-time", "datetime-tuple-unicode"],
)  # fmt: skip
def test_the_worker_s_record_serializer_writes_what_dumps_writes(record: dict[str, Any]) -> None:
    # The same JSON value; json escapes non-ASCII text where orjson writes it as UTF-8.
    assert json.loads(wire.dumps_record(record)) == json.loads(wire.dumps(record))


def test_deferral_is_jittered_exponential_capped_and_honours_retry_after() -> None:
    for attempt in range(1, 12):
        delay = defer_seconds(attempt, base=2.0, cap=300.0, retry_after=None)
        nominal = min(300.0, 2.0 * 2 ** (attempt - 1))
        assert 0.5 * nominal <= delay <= 1.5 * nominal
    assert defer_seconds(1, base=2.0, cap=300.0, retry_after=90.0) >= 90.0


ERROR_CLASSES = sorted(set(ERROR_CODES.values()), key=lambda cls: cls.code)


@pytest.mark.parametrize("error_class", ERROR_CLASSES, ids=lambda cls: cls.code)
async def test_every_error_class_records_a_valid_result(
    redis: FakeRedis, error_class: type[GcalError]
) -> None:
    result = JobResult.failure("job-e", "get_events", JobError.from_error(error_class("boom")))
    await record(redis, KEYS, result, Notifier(redis, KEYS))
    stored = JobResult.model_validate_json(await redis.get(KEYS.result("job-e")))
    assert stored.error is not None
    assert (stored.error.code, stored.error.retryable) == (error_class.code, error_class.retryable)
    [(_, fields)] = await redis.xrange(KEYS.notification_stream)
    note = parse_notification(fields[b"json"])
    assert isinstance(note, JobCompleted)
    assert note.error_code == error_class.code


@pytest.fixture
def new_error_class() -> Iterator[type[GcalError]]:
    """An error class added to the tree the way a contributor would; removed afterwards."""

    class CalendarLocked(GcalError):
        code = "calendar_locked"

    yield CalendarLocked
    del ERROR_CODES["calendar_locked"]


async def test_a_new_error_class_gets_a_result_without_any_other_change(
    redis: FakeRedis, new_error_class: type[GcalError]
) -> None:
    error = JobError.from_error(new_error_class("the calendar is locked"))
    await record(
        redis, KEYS, JobResult.failure("job-n", "get_events", error), Notifier(redis, KEYS)
    )
    stored = JobResult.model_validate_json(await redis.get(KEYS.result("job-n")))
    assert stored.error is not None
    assert stored.error.code == "calendar_locked"
    assert "calendar_locked" in json.dumps(JobResult.model_json_schema(mode="serialization"))


def test_an_error_code_outside_the_tree_is_refused() -> None:
    with pytest.raises(ValidationError):
        JobError(code="made_up", message="x", retryable=False)


def test_two_classes_cannot_share_a_new_code() -> None:
    with pytest.raises(TypeError, match="reuses the code"):

        class Again(GcalError):
            code = "not_found"
