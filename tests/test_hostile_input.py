"""No input can stop a worker: the regression corpus against a real ``python -m worker``.

Every case is put on the queue the way a producer in any language could (raw Redis commands),
all at once, against one worker process. Afterwards the process is still running and serves
a good job, every case whose id can be named has exactly the expected typed result, the one
whose id is not UTF-8 is in the dead-letter stream, and nothing is left on the queue.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from jobs.results import JobResult
from tests.harness import Emulator
from tests.hostile_payloads import Case, corpus
from tests.pipeline import Pipeline, WorkerProcess, pipeline


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix) as p:
        await p.link("u1")
        yield p


async def put(pipe: Pipeline, case: Case) -> None:
    """Enqueue ``case`` as a producer writing raw commands would."""
    job_key = b"arq:job:" + case.job_id
    if case.hash_payload:
        await pipe.redis.execute_command("HSET", job_key, "f", "list_calendars")  # type: ignore[no-untyped-call]
    elif case.payload is not None:
        await pipe.redis.set(job_key, case.payload, px=60_000)
    if case.tries is not None:
        await pipe.redis.set(b"arq:retry:" + case.job_id, case.tries, px=60_000)
    score = int(time.time() * 1000) if case.score is None else case.score
    await pipe.redis.zadd(pipe.keys.queue, {case.job_id: score})


async def outcome(pipe: Pipeline, case: Case) -> str | None:
    if case.expect == "dead_letter":
        letters = await pipe.redis.xrange(pipe.keys.dead_letters)
        hexed = case.job_id.hex().encode()
        return "dead_letter" if any(f[b"job_id_hex"] == hexed for _, f in letters) else None
    raw = await pipe.redis.get(pipe.keys.result(case.job_id.decode()))
    if raw is None:
        return None
    result = JobResult.model_validate_json(raw)
    return "ok" if result.ok else (result.error.code if result.error else "?")


async def test_no_queued_input_stops_the_worker_and_every_nameable_job_is_answered(
    pipe: Pipeline,
) -> None:
    cases = corpus()
    worker = await WorkerProcess(pipe.settings).start()
    try:
        for case in cases:
            await put(pipe, case)
        seen: dict[str, str | None] = {}

        async def all_answered() -> bool:
            for case in cases:
                seen[case.name] = await outcome(pipe, case)
            return all(seen.values())

        async with asyncio.timeout(30):
            # The outcome is state in Redis, written by another process: poll it.
            while not await all_answered():
                assert worker.proc is not None
                assert worker.proc.returncode is None, "the worker stopped"
                await asyncio.sleep(0.05)
        assert seen == {case.name: case.expect for case in cases}
        assert await pipe.redis.zcard(pipe.keys.queue) == 0
        leftovers = [c.name for c in cases if await pipe.redis.exists(b"arq:job:" + c.job_id)]
        assert leftovers == []
        # Still serving.
        assert (await pipe.run("list_calendars", {"user_id": "u1"})).ok
    finally:
        worker.signal(signal.SIGTERM)
        code, log = await worker.wait()
    assert code == 0, log
    # arq's own log lines never print the arguments (users' calendar data).
    assert "u1" not in log
    assert json.dumps(pipe.settings.client_secret.get_secret_value()) not in log


async def test_the_health_probe_reports_a_dead_worker_at_once(pipe: Pipeline) -> None:
    worker = await WorkerProcess(pipe.settings).start()
    await pipe.run("list_calendars", {"user_id": "u1"}, timeout=20)  # it is up
    probe = await WorkerProcess(pipe.settings, "--check").start()
    assert (await probe.wait())[0] == 0
    worker.signal(signal.SIGKILL)
    assert (await worker.wait())[0] == -signal.SIGKILL
    # Its health record is still fresh in Redis, but the process it names is gone.
    keys = [k async for k in pipe.redis.scan_iter(match=f"{pipe.keys.prefix}:workers:*")]
    assert len(keys) == 1
    probe = await WorkerProcess(pipe.settings, "--check").start()
    code, log = await probe.wait()
    assert code == 1, log
