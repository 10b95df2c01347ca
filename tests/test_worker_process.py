"""The worker as a real process (``python -m worker``): crashes, shutdown and health probes.

At-least-once delivery means a job interrupted by a crash runs again; ``create_event`` must
still create exactly one event. The first worker is SIGKILLed while Google (the emulator)
holds its insert request, so the insert lands but its answer is lost, the worst case.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from emulator.faults import FaultRule
from tests.harness import Emulator
from tests.pipeline import Pipeline, WorkerProcess, pipeline, wait_until

EVENT = {
    "summary": "Crash-proof",
    "start": {"dateTime": "2026-12-01T10:00:00Z"},
    "end": {"dateTime": "2026-12-01T11:00:00Z"},
}


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    # A short job timeout: arq re-runs a job whose worker died once its in-progress mark
    # (job timeout + 10 s) expires.
    async with pipeline(emulator, redis, redis_prefix, job_timeout=2.0) as p:
        await p.link("u1")
        yield p


async def test_sigkill_during_create_event_leaves_exactly_one_event(pipe: Pipeline) -> None:
    emulator = pipe.emulator
    emulator.faults.add(FaultRule(endpoint="events.insert", latency_ms=1000, count=1))
    job_id = await pipe.client.enqueue("create_event", {"user_id": "u1", "event": EVENT})

    first = await WorkerProcess(pipe.settings).start()
    await wait_until(lambda: emulator.faults.injected == 1)  # the insert is at "Google"
    first.signal(signal.SIGKILL)
    code, _ = await first.wait()
    assert code == -signal.SIGKILL
    await wait_until(lambda: emulator.store.requests["events.insert"] == 1)  # and lands

    second = await WorkerProcess(pipe.settings).start()
    try:
        result = await pipe.client.result(job_id, timeout=40)
    finally:
        second.signal(signal.SIGTERM)
        await second.wait()

    assert result.ok, result
    assert result.data is not None
    assert result.data["created"] is False  # the second run found the first run's event
    calendar = emulator.store.account(pipe.email).calendars[pipe.email]
    assert [e.id for e in calendar.events.values()] == [result.data["event"]["id"]]
    assert emulator.store.requests["events.insert"] == 2


async def test_sigterm_lets_the_running_job_finish(pipe: Pipeline) -> None:
    settings = pipe.settings.model_copy(update={"worker_drain_seconds": 10})
    pipe.emulator.faults.add(FaultRule(endpoint="calendarList.list", latency_ms=500, count=1))
    worker = await WorkerProcess(settings).start()
    job_id = await pipe.client.enqueue("list_calendars", {"user_id": "u1"})
    await wait_until(lambda: pipe.emulator.faults.injected == 1)  # the job is running
    worker.signal(signal.SIGTERM)
    code, log = await worker.wait()
    result = await pipe.client.result(job_id, timeout=5)
    assert code == 0, log
    assert result.ok, result


async def test_health_probe_follows_a_live_worker(pipe: Pipeline) -> None:
    before = await WorkerProcess(pipe.settings, "--check").start()
    assert (await before.wait())[0] == 1
    worker = await WorkerProcess(pipe.settings).start()
    try:
        await pipe.client.run("list_calendars", {"user_id": "u1"}, timeout=20)  # it is up
        probe = await WorkerProcess(pipe.settings, "--check").start()
        code, log = await probe.wait()
    finally:
        worker.signal(signal.SIGTERM)
        await worker.wait()
    assert code == 0, log


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_the_worker_runs_on_the_configured_event_loop(pipe: Pipeline, loop: str) -> None:
    settings = pipe.settings.model_copy(update={"worker_event_loop": loop})
    worker = await WorkerProcess(settings).start()
    try:
        result = await pipe.client.run("list_calendars", {"user_id": "u1"}, timeout=20)
    finally:
        worker.signal(signal.SIGTERM)
        code, log = await worker.wait()
    assert result.ok, result
    assert code == 0, log
    assert f"loop={loop}" in log, log
