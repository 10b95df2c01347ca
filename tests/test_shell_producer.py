"""A producer in another language: ``examples/enqueue.sh`` (redis-cli only) against a real
worker and the emulator, as ``docs/contract.md`` tells non-Python services to do it.

The script runs as a subprocess of the test's event loop (the worker runs in that loop too),
bounded by a timeout. Without redis-cli these tests fail, never skip.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from jobs.results import JobResult
from tests.harness import Emulator
from tests.pipeline import Pipeline, pipeline

SCRIPT = Path(__file__).resolve().parent.parent / "examples" / "enqueue.sh"
EVENT = {
    "summary": "Planning",
    "start": {"dateTime": "2026-12-01T10:00:00+00:00"},
    "end": {"dateTime": "2026-12-01T10:30:00+00:00"},
}


@dataclass(frozen=True)
class Run:
    status: int
    stdout: str
    stderr: str

    def result(self) -> JobResult:
        return JobResult.model_validate_json(self.stdout)


pytestmark = pytest.mark.usefixtures("redis_cli")


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix) as p:
        await p.link("u1")
        await p.start_worker()
        yield p


async def enqueue(
    p: Pipeline, job: str, args: dict[str, Any] | str, *, within: float = 30, **env: str
) -> Run:
    """Run the script for one job; ``env`` adds to (or overrides) its environment."""
    environment = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "REDIS_URL": str(p.settings.redis_url),
        "GCAL_PREFIX": p.settings.redis_prefix,
        "TIMEOUT": "20",
        **env,
    }
    raw = args if isinstance(args, str) else json.dumps(args)
    proc = await asyncio.create_subprocess_exec(
        "sh",
        str(SCRIPT),
        job,
        raw,
        env=environment,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(within):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"{SCRIPT.name} {job} did not finish within {within}s")
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


async def test_list_calendars_prints_the_stored_result(pipe: Pipeline) -> None:
    run = await enqueue(pipe, "list_calendars", {"user_id": "u1"})
    assert run.status == 0, run
    result = run.result()
    assert (result.job, result.ok) == ("list_calendars", True)
    assert result.data is not None
    assert [c["id"] for c in result.data["calendars"]] == [pipe.email]
    stored = await pipe.redis.get(pipe.keys.result(result.job_id))
    assert stored is not None
    assert JobResult.model_validate_json(stored) == result


async def test_create_event_once_per_job_id(pipe: Pipeline) -> None:
    job_id = uuid.uuid4().hex
    args = {"user_id": "u1", "event": EVENT}
    first = await enqueue(pipe, "create_event", args, JOB_ID=job_id)
    # The same id again: not enqueued a second time; the script prints the first result.
    again = await enqueue(pipe, "create_event", args, JOB_ID=job_id)
    assert first.status == 0, first
    result = first.result()
    assert result.job_id == job_id
    assert result.data is not None
    assert result.data["created"] is True
    assert result.data["event"]["summary"] == "Planning"
    assert again.status == 0, again
    assert "not enqueued again" in again.stderr
    assert again.result() == result
    assert pipe.emulator.store.requests["events.insert"] == 1


async def test_polling_fallback_gets_the_same_answer(pipe: Pipeline) -> None:
    run = await enqueue(pipe, "list_calendars", {"user_id": "u1"}, GCAL_WAIT="poll")
    assert run.status == 0, run
    assert run.result().ok


async def test_invalid_arguments_come_back_as_invalid_request(pipe: Pipeline) -> None:
    backwards = {**EVENT, "end": EVENT["start"], "start": EVENT["end"]}
    run = await enqueue(pipe, "create_event", {"user_id": "u1", "event": backwards})
    assert run.status == 1, run
    error = run.result().error
    assert error is not None
    assert (error.code, error.retryable) == ("invalid_request", False)
    assert error.fields is not None
    assert [f.field for f in error.fields] == ["event.end"]
    assert pipe.emulator.store.requests["events.insert"] == 0


async def test_unknown_job_comes_back_as_invalid_request(pipe: Pipeline) -> None:
    run = await enqueue(pipe, "drop_tables", {"user_id": "u1"})
    assert run.status == 1, run
    result = run.result()
    assert result.job == "drop_tables"
    assert result.error is not None
    assert result.error.code == "invalid_request"
    assert "unknown job name" in result.error.message


async def test_usage_errors_exit_2_without_enqueueing(pipe: Pipeline) -> None:
    not_an_object = await enqueue(pipe, "list_calendars", '["u1"]')
    bad_name = await enqueue(pipe, "List Calendars", {"user_id": "u1"})
    assert (not_an_object.status, bad_name.status) == (2, 2)
    assert await pipe.redis.zcard(pipe.keys.queue) == 0


async def test_no_worker_means_a_timeout_exit(
    emulator: Emulator, redis: Redis, redis_prefix: str
) -> None:
    job_id = uuid.uuid4().hex
    async with pipeline(emulator, redis, redis_prefix) as p:
        try:
            run = await enqueue(p, "list_calendars", {"user_id": "u1"}, TIMEOUT="1", JOB_ID=job_id)
        finally:
            await redis.delete(f"arq:job:{job_id}")  # arq's key is outside our prefix
    assert run.status == 124, run
    assert run.stdout == ""
    assert "no result" in run.stderr
