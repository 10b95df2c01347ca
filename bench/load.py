"""Load for the jobs benchmark: a bounded number of jobs in flight, and what it cost.

    rate = await measure("name", one, worker_pid=..., emulator_pid=..., count=3000,
                         seconds=15, width=100)

:func:`lanes` runs ``width`` lanes, each awaiting its job before starting the next, so at
most ``width`` jobs are in flight; it stops at ``count`` jobs or after ``seconds``, whichever
comes first. :func:`measure` adds the CPU time the worker and the emulator processes spent
meanwhile (``bench.emulator_rate.cpu_seconds``), as a :class:`Rate`. :class:`ArqCompletions`
tells when jobs that write no result of ours (the no-op baseline) have finished.
:func:`collector_paused` keeps the driver's own garbage collector out of what it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from arq.constants import result_key_prefix
from redis.asyncio import Redis

from bench.emulator_rate import cpu_seconds


@dataclass(frozen=True)
class Rate:
    """Jobs finished in one measured run, and the CPU time the worker and emulator spent."""

    name: str
    jobs: int
    wall_s: float
    worker_cpu_s: float
    emulator_cpu_s: float

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.wall_s

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000 * self.worker_cpu_s / self.jobs

    @property
    def busy_percent(self) -> float:
        """The worker's CPU use over the run: near 100, the worker itself is the limit."""
        return 100 * self.worker_cpu_s / self.wall_s

    @property
    def jobs_per_core_s(self) -> float:
        return self.jobs / self.worker_cpu_s if self.worker_cpu_s else math.inf


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The driver's cyclic garbage collector off while it measures, as ``timeit`` does. A full
    collection of the driver's heap stalls its event loop (by 99-128 ms, seen in open-loop runs
    at 50 and 80 % load), and every completion notification that arrives meanwhile would be
    stamped late: a pause of the harness counted as the stack's latency. Reference counting
    still frees what the run drops; cycles wait for the next collection after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


async def lanes(
    count: int, seconds: float, width: int, one: Callable[[int], Awaitable[None]]
) -> tuple[int, float]:
    """Run ``one(i)`` ``width`` at a time until ``count`` jobs or ``seconds`` have passed
    (started jobs finish); returns (jobs done, wall seconds)."""
    counter = itertools.count()
    done = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds

    async def lane() -> None:
        nonlocal done
        while time.perf_counter() < deadline and (i := next(counter)) < count:
            await one(i)
            done += 1

    await asyncio.wait_for(asyncio.gather(*(lane() for _ in range(width))), seconds + 60)
    return done, time.perf_counter() - t0


async def measure(
    name: str,
    one: Callable[[int], Awaitable[None]],
    *,
    worker_pid: int,
    emulator_pid: int,
    count: int,
    seconds: float,
    width: int,
) -> Rate:
    """:func:`lanes`, with the worker's and the emulator's CPU time over the run (the driver's
    collector paused)."""
    cpu0, emu0 = cpu_seconds(worker_pid), cpu_seconds(emulator_pid)
    with collector_paused():
        jobs, wall = await lanes(count, seconds, width, one)
    cpu, emu = cpu_seconds(worker_pid) - cpu0, cpu_seconds(emulator_pid) - emu0
    if jobs == 0:
        raise RuntimeError(f"{name}: no job finished")
    return Rate(name, jobs, wall, cpu, emu)


class ArqCompletions:
    """Completion of jobs that write no result of ours (the no-op): arq's result key, polled
    for every awaited job in one pipeline every ``interval`` seconds."""

    def __init__(self, redis: Redis, interval: float = 0.002) -> None:
        self._redis = redis
        self._interval = interval
        self._pending: dict[str, asyncio.Future[None]] = {}

    async def wait(self, job_id: str, *, within: float) -> None:
        self._pending[job_id] = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self._pending[job_id]), within)
        finally:
            self._pending.pop(job_id, None)

    async def poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            ids = list(self._pending)
            if not ids:
                continue
            async with self._redis.pipeline(transaction=False) as pipe:
                for job_id in ids:
                    pipe.exists(result_key_prefix + job_id)
                found = await pipe.execute()
            for job_id, exists in zip(ids, found, strict=True):
                waiter = self._pending.get(job_id)
                if exists and waiter is not None and not waiter.done():
                    waiter.set_result(None)
