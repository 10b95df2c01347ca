"""Open-loop load: jobs enqueued on a Poisson schedule at a fixed rate, whatever the worker
does, and each job's latency from its enqueue to the arrival of its completion notification.

    async with Notifications(redis, pattern) as notes:        # PSUBSCRIBE, stamped on arrival
        async def submit(i: int) -> asyncio.Future[float]:
            arrival = notes.expect(job_id)                     # before the enqueue: never missed
            await enqueue(job_id)
            return arrival
        result = await open_loop(submit, rate=400, seconds=6, ...)

Closed-loop load (``bench.load.lanes``) finds the saturation rate; an open loop at a fraction of
it shows the latency a producer sees when the worker is not the limit (and, past a stack's
saturation, how its queue grows). The schedule is seeded, so every stack gets the same arrival
times. A job counts as enqueued when its enqueue call starts; if the driver falls behind the
schedule, ``max_lag_ms`` says by how much. The driver's garbage collector is paused while it
enqueues and waits (``bench.load.collector_paused``): its pauses are not the stack's latency.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from bench.emulator_rate import cpu_seconds
from bench.load import collector_paused
from gcal.tasks import cancel

Submit = Callable[[int], Awaitable["asyncio.Future[float]"]]


class JobFailed(RuntimeError):
    """A completion notification that says the job did not succeed."""


class Notifications:
    """Completion notifications on one channel pattern (JSON with ``job_id`` and ``ok``),
    each resolving the future of the job it names with its arrival time (``perf_counter``)."""

    def __init__(self, redis: Redis, pattern: str) -> None:
        self._redis = redis
        self._pattern = pattern
        self._pending: dict[str, asyncio.Future[float]] = {}
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Notifications:
        self._pubsub = self._redis.pubsub()
        await self._pubsub.psubscribe(self._pattern)
        self._listener = asyncio.create_task(self._listen(self._pubsub))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await cancel(self._listener)
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        for waiter in self._pending.values():
            waiter.cancel()
        self._pending.clear()

    def expect(self, job_id: str) -> asyncio.Future[float]:
        """A future for ``job_id``'s notification; call it before enqueueing the job."""
        waiter: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._pending[job_id] = waiter
        return waiter

    async def _listen(self, pubsub: PubSub) -> None:
        async for message in pubsub.listen():
            if message["type"] != "pmessage":
                continue
            arrived = time.perf_counter()
            note = json.loads(message["data"])
            waiter = self._pending.pop(note["job_id"], None)
            if waiter is None or waiter.done():
                continue
            if note["ok"]:
                waiter.set_result(arrived)
            else:
                waiter.set_exception(JobFailed(f"{note['job_id']} failed: {note}"))


@dataclass(frozen=True)
class OpenLoopRun:
    """One open-loop run: the offered rate, every finished job's latency, and the cost."""

    offered_per_s: float
    jobs: int  # enqueued
    latencies_ms: tuple[float, ...]  # of the jobs that finished, in enqueue order
    wall_s: float  # first enqueue to the last notification (or the end of the wait)
    worker_cpu_s: float
    max_lag_ms: float  # how far behind its schedule the driver enqueued, at worst

    @property
    def unfinished(self) -> int:
        return self.jobs - len(self.latencies_ms)

    @property
    def delivered_per_s(self) -> float:
        return len(self.latencies_ms) / self.wall_s

    @property
    def cpu_ms_per_job(self) -> float | None:
        return 1000 * self.worker_cpu_s / len(self.latencies_ms) if self.latencies_ms else None

    def percentile_ms(self, q: float) -> float | None:
        """Nearest-rank percentile over every enqueued job, an unfinished one counting as
        slower than any finished; ``None`` when the rank falls on an unfinished job."""
        rank = max(0, math.ceil(q * self.jobs) - 1)
        ordered = sorted(self.latencies_ms)
        return ordered[rank] if rank < len(ordered) else None


async def open_loop(
    submit: Submit,
    *,
    rate: float,
    seconds: float,
    max_jobs: int,
    wait_seconds: float,
    worker_pid: int,
    seed: int = 1,
) -> OpenLoopRun:
    """Enqueue ``min(max_jobs, rate x seconds)`` jobs (at least one) at Poisson arrival times
    of mean rate ``rate``, then wait up to ``wait_seconds`` for the last notifications."""
    count = max(1, min(max_jobs, round(rate * seconds)))
    schedule = random.Random(seed)  # noqa: S311 - reproducible arrival times, not a secret
    latencies: dict[int, float] = {}

    async def one(i: int) -> None:
        enqueued = time.perf_counter()
        arrived = await (await submit(i))
        latencies[i] = 1000 * (arrived - enqueued)

    lag = 0.0
    tasks: list[asyncio.Task[None]] = []
    with collector_paused():
        cpu0 = cpu_seconds(worker_pid)
        t0 = due = time.perf_counter()
        for i in range(count):
            due += schedule.expovariate(rate)
            if (delay := due - time.perf_counter()) > 0:
                await asyncio.sleep(delay)
            lag = max(lag, time.perf_counter() - due)
            tasks.append(asyncio.create_task(one(i)))
        _, late = await asyncio.wait(tasks, timeout=wait_seconds)
        wall = time.perf_counter() - t0
        cpu = cpu_seconds(worker_pid) - cpu0
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error
    return OpenLoopRun(
        offered_per_s=rate,
        jobs=count,
        latencies_ms=tuple(latencies[i] for i in sorted(latencies)),
        wall_s=wall,
        worker_cpu_s=cpu,
        max_lag_ms=1000 * lag,
    )
