"""How many jobs one worker core runs per second, against arq's own no-op job as the baseline,
and what the worker's poll delay costs in idle CPU and buys in latency.

Processes: the emulator (``python -m emulator``, pinned to CPU 0) plays Google; the worker
(``python -m bench.worker_child``, pinned to CPU 1) is a child process too, so its CPU time is
read from ``/proc/PID/task/*/schedstat``; this process drives the load with
:class:`jobs.client.JobClient` through a Redis server of the run's own, started and stopped
with it (``devstack.redis_server``: a real server on a free port, never another process's)
(setup: ``bench.jobs_env``; load and CPU accounting: ``bench.load``). The driver and Redis
are not pinned and share the two cores with them, so wall-clock jobs/s depends on the
machine and the driver (``busy %``, the worker's CPU over wall time, shows whether the
worker was the limit); the worker's CPU time per job (and ``jobs/s/core`` = 1 / that) does
not.

1. Throughput. Each scenario keeps ``2 x max_jobs`` jobs in flight (a lane enqueues its next
   job when its last one's result arrives) and stops after a job count or a time limit,
   whichever comes first; it reports wall-clock jobs/s and the worker's CPU ms per job, both
   also as ratios to the baseline, measured in the same run:

   * baseline: a plain arq ``Worker`` (same poll delay, ``max_jobs``, JSON serializer, result
     retention) whose one function returns at once; completion is seen in arq's result key;
   * ``get_events`` reading exactly one page of 10 or 250 events (``max_results`` =
     ``max_events`` = page size, a window covering the seeded events), through the product's
     worker (``create_worker``), with the emulator answering events.list at once or after
     50 ms of injected latency. The limiter's quotas are 0 (unlimited), tokens are fresh (no
     refresh), users rotate over the seeded accounts.

2. Scaling: the +50 ms 10-event workload on one worker process, then on two.

3. Poll delay. For each candidate ``worker_poll_delay``: a fresh worker's CPU % over a few
   idle seconds (empty queue), then enqueue-to-result latency of ``list_calendars`` jobs run
   one at a time, each enqueued after a random pause so it meets the poll cycle at a random
   phase. Those latencies include the job itself (one calendarList call to the emulator).
   Then a short loaded run (10-event get_events pages, as in part 1): arq sleeps the poll
   delay between queue reads even when busy, so a long delay also caps throughput.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from arq.connections import ArqRedis

from bench.cores import CoresBusy
from bench.emulator_rate import cpu_seconds
from bench.jobs_env import JOB_TIMEOUT, SEEDED_EVENTS, WINDOW, JobsEnv, bench_env
from bench.load import ArqCompletions, Rate, lanes, measure
from bench.worker_child import NOOP_JOB, WorkerProcess
from jobs import wire
from jobs.client import JobClient

PAGE_SIZES = (10, 250)
LATENCIES_MS = (0, 50)
POLL_DELAYS = (0.01, 0.05, 0.2, 0.5)


@dataclass(frozen=True)
class Plan:
    """How much work each part does (full, ``--quick``, or the smoke test's)."""

    jobs: int  # per throughput scenario, at most
    seconds: float  # per throughput scenario, at most
    accounts: int
    idle_seconds: float
    latency_jobs: int

    def under_load(self) -> Plan:
        """The shorter throughput run the poll-delay part does for each delay."""
        return dataclasses.replace(self, jobs=self.jobs // 3, seconds=self.seconds / 3)

    @classmethod
    def choose(cls, *, quick: bool, smoke: bool) -> Plan:
        if smoke:
            return cls(jobs=20, seconds=2.0, accounts=4, idle_seconds=0.3, latency_jobs=3)
        if quick:
            return cls(jobs=300, seconds=3.0, accounts=20, idle_seconds=1.0, latency_jobs=10)
        return cls(jobs=3000, seconds=15.0, accounts=50, idle_seconds=3.0, latency_jobs=30)


@dataclass(frozen=True)
class PollDelay:
    """One candidate poll delay: idle cost and latency."""

    poll_delay: float
    idle_cpu_percent: float
    latencies_ms: tuple[float, ...]
    loaded: Rate  # short get_events (10-event pages) throughput at this poll delay

    @property
    def p50_ms(self) -> float:
        return percentile(self.latencies_ms, 0.50)

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies_ms, 0.95)


@dataclass(frozen=True)
class Scaling:
    """+50 ms, 10-event get_events: jobs/s of one worker process, and of two: the second on
    the other core (beside the emulator, Redis and the driver), then both on the worker's
    core; with how busy both cores were in each run (worker's core, other core; %) and the
    workers' CPU per job (every worker's CPU over the run's jobs, ms). Where two workers' jobs
    cost what one's do, the workers do not contend: what two lack is a core each."""

    one_jobs_per_s: float
    two_jobs_per_s: float
    two_one_core_jobs_per_s: float
    one_cores_busy: tuple[float, float]
    two_cores_busy: tuple[float, float]
    two_one_core_cores_busy: tuple[float, float]
    one_cpu_ms_per_job: float
    two_cpu_ms_per_job: float
    two_one_core_cpu_ms_per_job: float

    @property
    def ratio(self) -> float:
        return self.two_jobs_per_s / self.one_jobs_per_s

    @property
    def ratio_one_core(self) -> float:
        return self.two_one_core_jobs_per_s / self.one_jobs_per_s

    def cpu_per_job(self) -> str:
        """The workers' CPU per job in each arrangement, as the reports print it."""
        return (
            f"the workers' CPU ms/job (one, two, two on one core) {self.one_cpu_ms_per_job:.2f}, "
            f"{self.two_cpu_ms_per_job:.2f}, {self.two_one_core_cpu_ms_per_job:.2f}"
        )


@dataclass
class JobsReport:
    baseline: Rate
    scenarios: list[Rate]
    poll_delays: list[PollDelay]
    scaling: Scaling
    max_jobs: int
    default_poll_delay: float
    # Exit code of every worker process started, in order (0: clean exit on SIGTERM).
    worker_exits: list[int | None] = field(default_factory=list)


def percentile(values: tuple[float, ...], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a handful of samples stays honest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def get_events_job(env: JobsEnv, client: JobClient, page: int) -> Callable[[int], Awaitable[None]]:
    """Job ``i``: one get_events page of ``page`` events, for user ``i`` modulo the users."""

    async def one(i: int) -> None:
        args = {
            "user_id": env.users[i % len(env.users)],
            "time_min": WINDOW[0].isoformat(),
            "time_max": WINDOW[1].isoformat(),
            "max_results": page,
            "max_events": page,
        }
        result = await client.run("get_events", args, timeout=JOB_TIMEOUT, job_id=env.job_id())
        if not result.ok or result.data is None:
            raise RuntimeError(f"get_events failed: {result.error}")
        assert len(result.data["events"]) == page, len(result.data["events"])

    return one


@dataclass(frozen=True)
class Run:
    """What every part of one run shares."""

    env: JobsEnv
    plan: Plan
    client: JobClient
    http: aiohttp.ClientSession
    emulator_pid: int

    @property
    def width(self) -> int:
        """Jobs kept in flight: enough that the worker's every poll finds a full batch."""
        return 2 * self.env.settings.worker_max_jobs

    async def measure(
        self, name: str, one: Callable[[int], Awaitable[None]], worker_pid: int, plan: Plan
    ) -> Rate:
        return await measure(
            name,
            one,
            worker_pid=worker_pid,
            emulator_pid=self.emulator_pid,
            count=plan.jobs,
            seconds=plan.seconds,
            width=self.width,
        )

    async def baseline(self) -> Rate:
        """arq's no-op job, enqueued as JobClient enqueues (same ArqRedis, same serializer)."""
        arq = ArqRedis(
            connection_pool=self.env.redis.connection_pool,
            job_serializer=wire.dumps,
            job_deserializer=wire.loads,
            default_queue_name=self.env.keys.queue,
        )
        completions = ArqCompletions(self.env.redis)
        poller = asyncio.create_task(completions.poll())

        async def one(i: int) -> None:
            job_id = self.env.job_id()
            await arq.enqueue_job(NOOP_JOB, _job_id=job_id)
            await completions.wait(job_id, within=JOB_TIMEOUT)

        try:
            async with self.env.worker("noop") as worker:
                await lanes(self.width, 30, self.width, one)  # warm-up
                return await self.measure("baseline: arq no-op job", one, worker.pid, self.plan)
        finally:
            poller.cancel()

    async def get_events(self) -> list[Rate]:
        results: list[Rate] = []
        async with self.env.worker("gcal") as worker:
            # One job per user first: materializes the seeded events, warms every user's path.
            warm = get_events_job(self.env, self.client, SEEDED_EVENTS)
            await lanes(len(self.env.users), 60, self.width, warm)
            for latency in LATENCIES_MS:
                await self.env.set_latency(self.http, latency, endpoint="events.list")
                for page in PAGE_SIZES:
                    name = f"get_events, {page}-event page, +{latency} ms"
                    one = get_events_job(self.env, self.client, page)
                    results.append(await self.measure(name, one, worker.pid, self.plan))
            await self.env.set_latency(self.http, 0)
        return results

    async def scaling(self) -> Scaling:
        """One worker process (CPU 1); two (CPU 1, and CPU 0 beside the emulator: the machine
        has two cores); two on CPU 1. 10-event get_events at +50 ms, ``2 x max_jobs`` jobs in
        flight per worker.

        A worker bound by its ``max_jobs`` jobs in flight rather than its core leaves room
        for a second process on the same core; one that fills its core leaves none there, and
        on the other core a second competes with the emulator, Redis and the driver, which a
        2-core machine cannot keep off it. Both arrangements are measured, with how busy each
        core was."""
        await self.env.set_latency(self.http, 50, endpoint="events.list")
        one = get_events_job(self.env, self.client, PAGE_SIZES[0])

        async def rate(*workers: WorkerProcess) -> tuple[float, tuple[float, float], float]:
            width = len(workers) * self.width
            await lanes(width, 30, width, one)  # warm-up
            cores, cpu0 = CoresBusy(), sum(cpu_seconds(w.pid) for w in workers)
            jobs, wall = await lanes(self.plan.jobs, self.plan.seconds, width, one)
            cpu = sum(cpu_seconds(w.pid) for w in workers) - cpu0
            return jobs / wall, cores.percent(), 1000 * cpu / jobs

        try:
            async with self.env.worker("gcal") as first:
                alone = await rate(first)
            async with self.env.worker("gcal") as first, self.env.worker("gcal", 0) as second:
                spread = await rate(first, second)
            async with self.env.worker("gcal") as first, self.env.worker("gcal") as second:
                stacked = await rate(first, second)
        finally:
            await self.env.set_latency(self.http, 0)
        return Scaling(
            one_jobs_per_s=alone[0],
            two_jobs_per_s=spread[0],
            two_one_core_jobs_per_s=stacked[0],
            one_cores_busy=alone[1],
            two_cores_busy=spread[1],
            two_one_core_cores_busy=stacked[1],
            one_cpu_ms_per_job=alone[2],
            two_cpu_ms_per_job=spread[2],
            two_one_core_cpu_ms_per_job=stacked[2],
        )

    async def poll_delays(self) -> list[PollDelay]:
        pause = random.Random(1)  # noqa: S311 - a reproducible phase, not a secret
        results: list[PollDelay] = []
        for delay in POLL_DELAYS:
            async with self.env.worker("gcal", worker_poll_delay=delay) as worker:
                await self.list_calendars(0)  # warm-up
                await asyncio.sleep(0.2)  # let the warm-up's work settle
                cpu0, t0 = cpu_seconds(worker.pid), time.perf_counter()
                await asyncio.sleep(self.plan.idle_seconds)
                idle = 100 * (cpu_seconds(worker.pid) - cpu0) / (time.perf_counter() - t0)
                latencies: list[float] = []
                for i in range(self.plan.latency_jobs):
                    await asyncio.sleep(pause.uniform(0, delay))
                    t = time.perf_counter()
                    await self.list_calendars(i)
                    latencies.append(1000 * (time.perf_counter() - t))
                loaded = await self.measure(
                    f"get_events, 10-event page, poll {delay} s",
                    get_events_job(self.env, self.client, PAGE_SIZES[0]),
                    worker.pid,
                    self.plan.under_load(),
                )
            results.append(PollDelay(delay, idle, tuple(latencies), loaded))
        return results

    async def list_calendars(self, i: int) -> None:
        user_id = self.env.users[i % len(self.env.users)]
        result = await self.client.run(
            "list_calendars", {"user_id": user_id}, timeout=JOB_TIMEOUT, job_id=self.env.job_id()
        )
        if not result.ok:
            raise RuntimeError(f"list_calendars failed: {result.error}")


async def main(*, quick: bool = False, smoke: bool = False) -> JobsReport:
    """Run every part and print the report; ``smoke`` is the test suite's tiny run."""
    plan = Plan.choose(quick=quick, smoke=smoke)
    async with bench_env(plan.accounts) as bench:
        env = bench.env
        async with JobClient(env.redis, env.keys) as client:
            run = Run(env, plan, client, bench.http, bench.emulator.pid)
            base = await run.baseline()
            scenarios = await run.get_events()
            scaling = await run.scaling()
            delays = await run.poll_delays()
    result = JobsReport(
        baseline=base,
        scenarios=scenarios,
        poll_delays=delays,
        scaling=scaling,
        max_jobs=env.settings.worker_max_jobs,
        default_poll_delay=env.settings.worker_poll_delay,
        worker_exits=env.worker_exits,
    )
    report(result, plan)
    return result


def report(result: JobsReport, plan: Plan) -> None:
    base = result.baseline
    print(
        f"\njobs, one worker core (max_jobs {result.max_jobs}, poll delay "
        f"{result.default_poll_delay} s, {2 * result.max_jobs} in flight, "
        f"each scenario <= {plan.jobs} jobs or {plan.seconds:.0f} s)"
    )
    print(
        f"{'scenario':34} {'jobs':>5} {'jobs/s':>7} {'busy %':>6} {'CPU ms/job':>10} "
        f"{'jobs/s/core':>11} {'emu ms/job':>10} {'rate ratio':>10} {'CPU ratio':>9}"
    )
    for r in [base, *result.scenarios]:
        print(
            f"{r.name:34} {r.jobs:5d} {r.jobs_per_s:7.0f} {r.busy_percent:6.0f} "
            f"{r.cpu_ms_per_job:10.2f} {r.jobs_per_core_s:11.0f} "
            f"{1000 * r.emulator_cpu_s / r.jobs:10.2f} {r.jobs_per_s / base.jobs_per_s:10.2f} "
            f"{r.cpu_ms_per_job / base.cpu_ms_per_job:9.1f}"
        )
    scaling = result.scaling
    print(
        f"\nscaling, 10-event get_events at +50 ms: one worker {scaling.one_jobs_per_s:.0f} "
        f"jobs/s; two workers, one on each core, {scaling.two_jobs_per_s:.0f} jobs/s: "
        f"{scaling.ratio:.2f}x; both on the worker's core, "
        f"{scaling.two_one_core_jobs_per_s:.0f} jobs/s: {scaling.ratio_one_core:.2f}x; "
        f"{scaling.cpu_per_job()}"
    )
    print(
        f"\npoll delay: idle worker CPU over {plan.idle_seconds:g} s, and enqueue-to-result "
        f"latency of list_calendars jobs run one at a time ({plan.latency_jobs} each), "
        f"then get_events (10-event pages) under load ({2 * result.max_jobs} in flight)"
    )
    print(
        f"{'poll delay s':>12} {'idle CPU %':>10} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}"
        f" {'loaded jobs/s':>13} {'CPU ms/job':>10}"
    )
    for d in result.poll_delays:
        mark = "  (default)" if d.poll_delay == result.default_poll_delay else ""
        print(
            f"{d.poll_delay:12.2f} {d.idle_cpu_percent:10.2f} {d.p50_ms:7.1f} {d.p95_ms:7.1f} "
            f"{max(d.latencies_ms):7.1f} {d.loaded.jobs_per_s:13.0f} "
            f"{d.loaded.cpu_ms_per_job:10.2f}{mark}"
        )
