"""The comparison (issue 11, item 1): our worker against the arq no-op ceiling and a Celery
baseline, on the same jobs, machine, Redis and emulator, in one invocation.

    python -m bench compare [--quick | --smoke] [--repeats N] [--output PATH]

Stacks (``bench.stacks``): ours (the product's worker, ``create_worker``); Celery
(``bench.celery_baseline``: Redis broker, ``--pool threads --concurrency 16``, blocking
google-api-python-client calls) at prefetch multiplier 4 (Celery's default: 64 messages) and
16 (256 messages); arq's no-op job, the ceiling of any arq worker, twice: as arq comes (the
issue's ceiling) and on the Redis pool our worker runs on (``worker.redis_pool``), which
takes a share of arq's own cost away too. Each worker is a child process pinned to CPU 1,
the emulator to CPU 0; the driver and Redis are not pinned.

For each job (get_events reading one 10- or 250-event page, create_event with a fresh
idempotency key) at +0 and +50 ms of emulator latency (every Calendar endpoint), each stack
gets a fresh worker (``--smoke``: one per stack), warmed up, and is measured:

* saturation: ``2 x max_jobs`` (320) jobs in flight, closed loop (``bench.load``): jobs/s and
  the worker's CPU ms per job (all its threads, from ``/proc``);
* latency: open loop (``bench.open_loop``) at 50 % and 80 % of *ours'* saturation rate in the
  same repeat, Poisson arrivals (the same schedule for every stack): p50/p99 from enqueue to
  the completion notification, CPU ms per job at that load, and how busy each core was (a
  tail set by a full machine, not by the stack, shows there);
* peak RSS: the worker process's ``VmHWM`` at the end (its whole life: warm-up and all runs);
* idle CPU: % of a core over a few idle seconds, once per stack and repeat, after warm-up;
* noise: during each run, the CPU other processes took on the worker's core (``/proc/stat``
  less the worker's own), since the machine may be shared. CPU ms per job is the figure that
  noise moves least; jobs/s and latency move with it;
* the machine's idle cost (``bench.idle_cost``), once per repeat on the worker's core: what the
  same Python work costs after the core has idled, against back to back; a worker below
  saturation pays it on every wait, so its CPU per job at 50 % load reads against it.

The ceilings are measured once per repeat (saturation, RSS, idle). Everything repeats (default 3)
and the summary takes medians; the ratios (``bench.compare_report``) are of the medians. The
result file is JSON under ``bench/results/`` (git-ignored); a markdown table is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import compare_report, jobs_rate, sync_rate, sync_report
from bench.celery_baseline import CONCURRENCY
from bench.compare_report import Cell, IdleCpu, LoadRun
from bench.cores import CoresBusy, CoreShare, driver_off_the_worker_core, peak_rss_mib
from bench.emulator_rate import cpu_seconds
from bench.idle_cost import IdleCost, on_worker_core
from bench.jobs_env import JOB_TIMEOUT, WINDOW, JobsEnv, bench_env
from bench.load import Rate, lanes, measure
from bench.open_loop import open_loop
from bench.stacks import (
    Ceiling,
    CeleryBaseline,
    Ours,
    Stack,
    TunedCeiling,
    celery_name,
)
from bench.worker_child import WorkerProcess
from jobs.client import JobClient

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LATENCIES_MS = (0, 50)
PREFETCH_MULTIPLIERS = (4, 16)  # Celery's default, and 16
LOAD_FRACTIONS = (0.5, 0.8)  # of ours' saturation rate
CREATED_AT = "2031-03-03T10:00:00Z"  # outside the seeded window, on calendars nobody lists


@dataclass(frozen=True)
class Scenario:
    """One benchmarked job: get_events of one ``page``-event page, or create_event."""

    job: str
    page: int = 0

    @property
    def name(self) -> str:
        return f"{self.job} {self.page}" if self.page else self.job


SCENARIOS = (Scenario("get_events", 10), Scenario("get_events", 250), Scenario("create_event"))


@dataclass(frozen=True)
class Plan:
    """How much work the comparison does (full, ``--quick`` or ``--smoke``)."""

    mode: str
    repeats: int
    accounts: int  # readers, and as many writers
    warm_jobs: int  # per worker, before anything is measured
    jobs: int  # per saturation run, at most
    seconds: float  # per saturation run, at most
    load_seconds: float  # per open-loop run (its schedule)
    load_jobs: int  # per open-loop run, at most
    wait_seconds: float  # for the last notifications of an open-loop run
    idle_seconds: float
    idle_cost_units: int  # bench.idle_cost's units of work, each way
    fresh_workers: bool  # a new worker per (stack, scenario), else one per stack

    @classmethod
    def choose(cls, *, quick: bool, smoke: bool, repeats: int | None) -> Plan:
        if smoke:
            plan = cls("smoke", 1, 4, 10, 20, 1.0, 0.2, 10, 15.0, 0.2, 100, fresh_workers=False)
        elif quick:
            plan = cls(
                "quick", 1, 20, 100, 600, 3.0, 2.0, 1500, 30.0, 1.0, 1000, fresh_workers=True
            )
        else:
            plan = cls(
                "full", 3, 50, 200, 4000, 8.0, 6.0, 6000, 60.0, 3.0, 2000, fresh_workers=True
            )
        return plan if repeats is None else dataclasses.replace(plan, repeats=repeats)


JobMaker = Callable[[int], tuple[str, dict[str, Any]]]


@dataclass
class Comparison:
    """One invocation: the env, the plan, and every measurement so far."""

    env: JobsEnv
    plan: Plan
    client: JobClient
    http: aiohttp.ClientSession
    emulator_pid: int
    writers: list[str]
    cells: list[Cell] = dataclasses.field(default_factory=list)
    idle: list[IdleCpu] = dataclasses.field(default_factory=list)
    scaling: list[jobs_rate.Scaling] = dataclasses.field(default_factory=list)
    idle_costs: list[IdleCost] = dataclasses.field(default_factory=list)

    @property
    def width(self) -> int:
        return 2 * self.env.settings.worker_max_jobs

    def jobs(self, scenario: Scenario) -> JobMaker:
        """Job ``i`` of ``scenario``, in our contract's terms; users rotate."""
        users, writers = self.env.users, self.writers

        def get_events(i: int) -> tuple[str, dict[str, Any]]:
            return "get_events", {
                "user_id": users[i % len(users)],
                "time_min": WINDOW[0].isoformat(),
                "time_max": WINDOW[1].isoformat(),
                "max_results": scenario.page,
                "max_events": scenario.page,
            }

        def create_event(i: int) -> tuple[str, dict[str, Any]]:
            end = CREATED_AT.replace("T10:00", "T10:30")
            return "create_event", {
                "user_id": writers[i % len(writers)],
                "event": {
                    "summary": f"bench {i}",
                    "start": {"dateTime": CREATED_AT},
                    "end": {"dateTime": end},
                },
            }

        return get_events if scenario.job == "get_events" else create_event

    async def set_latency(self, latency_ms: int) -> None:
        await self.env.set_latency(self.http, latency_ms)

    async def repeat(self, repeat: int) -> None:
        rates: dict[tuple[str, int], float] = {}
        self.idle_costs.append(await on_worker_core(self.plan.idle_cost_units))
        celeries = list(PREFETCH_MULTIPLIERS)
        if repeat % 2:
            celeries.reverse()  # neither baseline always runs on the fuller emulator
        async with Ours(self.env, self.client) as ours:
            await self.stack_cells(ours, repeat, rates)
        for multiplier in celeries:
            async with CeleryBaseline(self.env, multiplier) as celery:
                await self.stack_cells(celery, repeat, rates)
        await self.set_latency(0)
        for kind in (Ceiling, TunedCeiling):
            async with kind(self.env) as ceiling, ceiling.worker() as proc:
                await self.ceiling(ceiling, proc, repeat)
        await self.scale(repeat)

    async def scale(self, repeat: int) -> None:
        """Ours: one worker process, then two, on 10-event get_events at +50 ms
        (``bench.jobs_rate``'s measure: the second worker shares CPU 0 with the emulator)."""
        plan = jobs_rate.Plan(
            jobs=self.plan.jobs,
            seconds=self.plan.seconds,
            accounts=self.plan.accounts,
            idle_seconds=self.plan.idle_seconds,
            latency_jobs=0,
        )
        run = jobs_rate.Run(self.env, plan, self.client, self.http, self.emulator_pid)
        scaling = await run.scaling()
        await self.env.forget_jobs()
        self.scaling.append(scaling)
        print(
            f"compare: repeat {repeat + 1}, ours, one worker vs two, get_events 10 +50 ms: "
            f"{scaling.one_jobs_per_s:.0f} vs {scaling.two_jobs_per_s:.0f} jobs/s, "
            f"{scaling.ratio:.2f}x; both on the worker's core "
            f"{scaling.two_one_core_jobs_per_s:.0f} jobs/s, {scaling.ratio_one_core:.2f}x; "
            f"{scaling.cpu_per_job()}",
            file=sys.stderr,
            flush=True,
        )

    async def stack_cells(
        self, stack: Stack, repeat: int, rates: dict[tuple[str, int], float]
    ) -> None:
        """Every (latency, scenario) of one stack; ours fills ``rates``, the others read it."""
        async with contextlib.AsyncExitStack() as shared:
            proc = (
                None
                if self.plan.fresh_workers
                else await shared.enter_async_context(stack.worker())
            )
            first = True
            for latency in LATENCIES_MS:
                await self.set_latency(latency)
                for scenario in SCENARIOS:
                    async with contextlib.AsyncExitStack() as own:
                        worker = (
                            proc
                            if proc is not None
                            else await own.enter_async_context(stack.worker())
                        )
                        cell = await self.cell(
                            stack,
                            worker,
                            scenario=scenario,
                            latency=latency,
                            repeat=repeat,
                            rates=rates,
                            idle=first,
                        )
                    self.cells.append(cell)
                    first = False

    async def cell(
        self,
        stack: Stack,
        worker: WorkerProcess,
        *,
        scenario: Scenario,
        latency: int,
        repeat: int,
        rates: dict[tuple[str, int], float],
        idle: bool,
    ) -> Cell:
        job = self.jobs(scenario)
        one = closed_loop_job(stack, job)
        await lanes(self.plan.warm_jobs, 60, self.width, one)
        await self.check(stack, scenario, job)
        if idle:
            self.idle.append(IdleCpu(repeat, stack.name, await self.idle_cpu(worker.pid)))
        share = CoreShare(worker.pid)
        saturation = await self.saturation(stack.name, one, worker.pid)
        saturated = compare_report.Saturation.of(saturation, share.others_percent())
        if isinstance(stack, Ours):
            rates[scenario.name, latency] = saturation.jobs_per_s
        loads = []
        for n, fraction in enumerate(LOAD_FRACTIONS):
            rate = fraction * rates[scenario.name, latency]

            async def submit(i: int) -> asyncio.Future[float]:
                _, arrival = await stack.submit(*job(i))
                return arrival

            share, cores = CoreShare(worker.pid), CoresBusy()
            run = await open_loop(
                submit,
                rate=rate,
                seconds=self.plan.load_seconds,
                max_jobs=self.plan.load_jobs,
                wait_seconds=self.plan.wait_seconds,
                worker_pid=worker.pid,
                seed=1000 * repeat + 10 * SCENARIOS.index(scenario) + n,
            )
            loads.append(LoadRun.of(fraction, run, share.others_percent(), cores.percent()))
        cell = Cell(
            repeat=repeat,
            stack=stack.name,
            scenario=scenario.name,
            latency_ms=latency,
            saturation=saturated,
            loads=loads,
            peak_rss_mib=peak_rss_mib(worker.pid),
        )
        progress(cell)
        await self.env.forget_jobs()
        return cell

    async def ceiling(self, stack: Ceiling, worker: WorkerProcess, repeat: int) -> None:
        one = closed_loop_job(stack, lambda i: ("noop", {}))
        await lanes(self.plan.warm_jobs, 60, self.width, one)
        self.idle.append(IdleCpu(repeat, stack.name, await self.idle_cpu(worker.pid)))
        share = CoreShare(worker.pid)
        saturation = await self.saturation(stack.name, one, worker.pid)
        cell = Cell(
            repeat=repeat,
            stack=stack.name,
            scenario=compare_report.NOOP,
            latency_ms=0,
            saturation=compare_report.Saturation.of(saturation, share.others_percent()),
            loads=[],
            peak_rss_mib=peak_rss_mib(worker.pid),
        )
        progress(cell)
        self.cells.append(cell)
        await self.env.forget_jobs()

    async def check(self, stack: Stack, scenario: Scenario, job: JobMaker) -> None:
        """One job's result, read back: the stack does the work it is measured on."""
        job_id, arrival = await stack.submit(*job(0))
        await asyncio.wait_for(arrival, JOB_TIMEOUT)
        data = await stack.result(job_id)
        if scenario.job == "get_events":
            assert len(data["events"]) == scenario.page, (stack.name, len(data["events"]))
        else:
            assert data["created"] is True, stack.name
            assert data["event"]["id"], stack.name

    async def idle_cpu(self, pid: int) -> float:
        """% of one core the worker uses with nothing to do (after a moment to settle)."""
        await asyncio.sleep(min(0.5, self.plan.idle_seconds))
        cpu0, t0 = cpu_seconds(pid), time.perf_counter()
        await asyncio.sleep(self.plan.idle_seconds)
        return 100 * (cpu_seconds(pid) - cpu0) / (time.perf_counter() - t0)

    async def saturation(
        self, name: str, one: Callable[[int], Awaitable[None]], worker_pid: int
    ) -> Rate:
        return await measure(
            name,
            one,
            worker_pid=worker_pid,
            emulator_pid=self.emulator_pid,
            count=self.plan.jobs,
            seconds=self.plan.seconds,
            width=self.width,
        )


def closed_loop_job(stack: Stack, job: JobMaker) -> Callable[[int], Awaitable[None]]:
    """``one(i)`` for ``bench.load``: enqueue job ``i``, return once it is announced."""

    async def one(i: int) -> None:
        _, arrival = await stack.submit(*job(i))
        await asyncio.wait_for(arrival, JOB_TIMEOUT)

    return one


def progress(cell: Cell) -> None:
    """One line per measured cell on stderr, so a long run shows where it is."""
    s = cell.saturation
    print(
        f"compare: repeat {cell.repeat + 1}, {cell.stack}, {cell.scenario} +{cell.latency_ms} ms:"
        f" {s.jobs_per_s:.0f} jobs/s, {s.cpu_ms_per_job:.2f} CPU ms/job, busy {s.busy_percent:.0f}"
        f" %, others on the worker core {s.others_on_worker_core_percent:.0f} %",
        file=sys.stderr,
        flush=True,
    )


def describe_stacks(env: JobsEnv) -> dict[str, str]:
    """What each stack name in the result stands for."""
    s = env.settings
    ours = (
        f"create_worker(settings): max_jobs {s.worker_max_jobs}, poll delay {s.worker_poll_delay} s"
    )
    stacks = {compare_report.OURS: ours}
    for m in PREFETCH_MULTIPLIERS:
        stacks[celery_name(m)] = (
            f"celery worker --pool threads --concurrency {CONCURRENCY} --prefetch-multiplier {m}"
            f" ({m * CONCURRENCY} messages), Redis broker"
        )
    stacks[compare_report.CEILING] = f"arq Worker with create_worker's options, a no-op job; {ours}"
    stacks[compare_report.TUNED_CEILING] = (
        "the same on the product worker's Redis pool (worker.redis_pool: hiredis packing, no "
        "pool-wide lock)"
    )
    return stacks


async def run(plan: Plan) -> Comparison:
    """Every repeat of ``plan``; the comparison holds the measurements."""
    async with bench_env(plan.accounts) as bench:
        env = bench.env
        writers = await env.link(bench.http, label="w", first=plan.accounts, events=0)
        async with JobClient(env.redis, env.keys) as client:
            comparison = Comparison(env, plan, client, bench.http, bench.emulator.pid, writers)
            for repeat in range(plan.repeats):
                await comparison.repeat(repeat)
    return comparison


async def main(
    *,
    quick: bool = False,
    smoke: bool = False,
    repeats: int | None = None,
    output: Path | None = None,
) -> Path:
    """Run the comparison, write its JSON result file, print the table; returns the file."""
    plan = Plan.choose(quick=quick, smoke=smoke, repeats=repeats)
    started = dt.datetime.now(dt.UTC)
    sync_plan = sync_rate.Plan.choose(quick=quick, smoke=smoke)
    sync = sync_report.SyncReport(plan=dataclasses.asdict(sync_plan), started_at="")
    with driver_off_the_worker_core():
        comparison = await run(plan)
        # The sync benchmark too (its no-change round is a target of the same issue), with
        # a Redis and an emulator of its own.
        sync.started_at = dt.datetime.now(dt.UTC).isoformat()
        await sync_rate.run(sync_plan, sync)
        sync.finished_at = dt.datetime.now(dt.UTC).isoformat()
    env = comparison.env
    result = compare_report.build(
        plan=dataclasses.asdict(plan),
        started=started,
        finished=dt.datetime.now(dt.UTC),
        cells=comparison.cells,
        idle=comparison.idle,
        worker_exits=env.worker_exits,
        stacks=describe_stacks(env),
        scaling=comparison.scaling,
        idle_costs=comparison.idle_costs,
        sync=sync_report.as_json(sync),
    )
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    path = output or RESULTS_DIR / f"compare-{plan.mode}-{stamp}.json"
    compare_report.write(result, path)
    print(compare_report.table(result))
    print(sync_report.table(sync))
    print(f"\nresult file: {path}")
    return path
