"""The benchmark's driver keeps its own garbage collector out of what it measures: a full
collection of its heap stalls its event loop, and every completion notification arriving
meanwhile would be stamped late and counted as the stack's latency."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Iterator

import pytest

from bench.load import collector_paused, measure
from bench.open_loop import open_loop


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.enable()
    yield
    if not enabled:
        gc.disable()


async def test_an_open_loop_run_enqueues_and_waits_with_the_collector_off() -> None:
    seen: list[bool] = []
    loop = asyncio.get_running_loop()

    async def submit(i: int) -> asyncio.Future[float]:
        seen.append(gc.isenabled())
        arrival: asyncio.Future[float] = loop.create_future()

        def notified() -> None:
            seen.append(gc.isenabled())
            arrival.set_result(0.0)

        # Later, while the run waits for the last notifications.
        loop.call_later(0.01, notified)
        return arrival

    run = await open_loop(
        submit, rate=1000, seconds=0.01, max_jobs=5, wait_seconds=5, worker_pid=os.getpid()
    )

    assert run.unfinished == 0
    assert seen == [False] * (2 * run.jobs)
    assert gc.isenabled()


async def test_a_saturation_run_has_the_collector_off() -> None:
    seen: list[bool] = []

    async def one(i: int) -> None:
        await asyncio.sleep(0)
        seen.append(gc.isenabled())

    me = os.getpid()
    rate = await measure("x", one, worker_pid=me, emulator_pid=me, count=3, seconds=5, width=1)

    assert rate.jobs == 3
    assert seen == [False, False, False]
    assert gc.isenabled()


def test_the_collector_comes_back_as_it_was_even_after_an_error() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError
    assert gc.isenabled()

    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()
