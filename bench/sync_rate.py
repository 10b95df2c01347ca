"""Calendar sync (issue 10): what a sync round without changes costs Google and the worker,
what Redis keeps per tracked event, and how long a change takes to reach a subscriber by
push and by polling.

    python -m bench sync [--quick] [--output PATH]

Processes: the emulator (``python -m emulator``) plays Google, pinned to CPU 0 with this
driver (``bench.cores``); the product's worker (``bench.worker_child``, what ``python -m
worker`` runs, scheduler included) is pinned to CPU 1, so its CPU time is read from
``/proc``; for push, ``python -m auth_web`` serves the webhook, on CPU 0. Redis is a server
of the run's own (``devstack.redis_server``), not pinned. Every setting is the product's
default except the Google URLs, the quotas (off) and what each part names below. Users are
linked as auth_web links them: tokens stored sealed, the schedule told (their calendar list
is due at once, then their calendars).

1. Rounds. N users (1,000; ``--quick`` 100), each with one calendar of 250 events, one an
   hour from today's midnight UTC (inside the sync window). Sync intervals of an hour, so
   that only the rounds started here run. The first round syncs every calendar list and
   lists every calendar in full; then each no-change round makes every calendar due at once
   (what its interval does when it comes) and lasts until every sync has ended. Per round:
   Google requests by method (the emulator's ``/_emulator/requests``; the goal is exactly
   one per calendar), notifications published (the stream's ``entries-added``), and the
   worker's CPU time over the round (scheduler, arq and jobs together) per sync. The
   ceiling: arq's no-op job in a plain arq worker with the same options, as many jobs at
   once as a round has syncs.
2. Memory. ``MEMORY USAGE ... SAMPLES 0`` (every field counted) of every calendar's seen
   hash, over the events it tracks, with the encoding Redis chose. A hash of more than
   ``hash-max-listpack-entries`` fields, or with a longer value than
   ``hash-max-listpack-value``, is a hashtable, else a (more compact) listpack; the other
   encoding is measured on copies of a sample of the same hashes made under a threshold
   that forces it.
3. Push latency. K users with 20 events each, ``GCAL_PUSH_WEBHOOK_URL`` at the auth_web
   process, the emulator's default latency (none injected). Once their first syncs have
   opened every channel, changes one at a time, each after a random pause: a PATCH at the
   emulator, as another Google client would; the time from just before it is sent to the
   ``event_updated`` entry in the stream (its id is Redis's clock in ms, this host's clock).
4. Polling latency. The same with push off and a short ``GCAL_SYNC_INTERVAL_SECONDS``; the
   design bounds it by interval x (1 + jitter) + 1.25 x tick (the scheduler's longest
   sleep), plus the sync itself.

The machine may be shared: each round reports the CPU other processes took on the worker's
core (``bench.cores.CoreShare``). CPU per sync is the figure that noise moves least.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from arq.constants import job_key_prefix
from redis.asyncio import Redis

from bench import sync_report
from bench.auth_web_process import AuthWebProcess
from bench.auth_web_process import wait_for as wait_within
from bench.cores import CoreShare, driver_off_the_worker_core
from bench.emulator_rate import cpu_seconds
from bench.jobs_env import JobsEnv, backends
from bench.sync_report import Ceiling, Latency, Memory, Round, SyncReport
from bench.worker_child import NOOP_JOB
from gcal.notifications import EventUpdated, parse_notification
from gcal.sync_schedule import SyncSchedule, parse_member
from jobs import wire

RESULTS_DIR = Path(__file__).resolve().parent / "results"
EVENT_ID = "seed00000000"  # the first event of every seeded calendar (emulator.seeding)
LATENCY_EVENTS = 20  # events per calendar in the latency parts
HOUR = 3600.0
WAIT_S = 600.0  # the longest one step may wait for the worker
PAUSE_S = 0.5  # the longest random pause before a change (its phase against the tick)


@dataclass(frozen=True)
class Plan:
    """How much work the benchmark does (full, ``--quick``, or the smoke test's)."""

    mode: str
    users: int  # in the rounds
    events: int  # per calendar, in the rounds
    rounds: int  # no-change rounds
    push_users: int
    push_changes: int
    poll_users: int
    poll_changes: int
    poll_interval_s: float
    copies: int  # seen hashes copied to measure the other encoding

    @classmethod
    def choose(cls, *, quick: bool, smoke: bool) -> Plan:
        if smoke:
            return cls("smoke", 3, 250, 1, 2, 3, 2, 2, 1.0, 2)
        if quick:
            return cls("quick", 100, 250, 2, 10, 20, 5, 10, 2.0, 20)
        return cls("full", 1000, 250, 3, 20, 100, 10, 50, 2.0, 50)


async def wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll a condition of the processes under test until it holds, or fail."""
    await wait_within(check, what, WAIT_S)


@dataclass
class Run:
    """What every part of one run shares."""

    plan: Plan
    report: SyncReport
    redis: Redis
    redis_url: str
    emulator_url: str
    http: aiohttp.ClientSession
    envs: list[JobsEnv] = field(default_factory=list)
    accounts: int = 0  # emulator accounts seeded so far

    async def users(self, label: str, count: int, events: int) -> tuple[JobsEnv, list[str]]:
        """A fresh prefix with ``count`` users linked (tokens stored; not yet scheduled)."""
        env = JobsEnv(self.emulator_url, self.redis, self.redis_url, accounts=count)
        self.envs.append(env)
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        users = await env.link(
            self.http, label=label, first=self.accounts, events=events, start=today
        )
        self.accounts += count
        return env, users

    async def requests(self) -> dict[str, int]:
        """Google requests the emulator has answered so far, by method."""
        async with self.http.get(f"{self.emulator_url}/_emulator/requests") as resp:
            counts: dict[str, int] = await resp.json()
        return counts

    async def settled(self, env: JobsEnv) -> bool:
        """No sync running, nothing queued."""
        running = await self.redis.zcard(env.keys.sync_running)
        queued = await self.redis.zcard(env.keys.queue)
        return bool(running == 0 and queued == 0)

    async def announced(self, env: JobsEnv) -> int:
        """Notifications ever added to the env's stream (trimming does not lower it)."""
        if not await self.redis.exists(env.keys.notification_stream):
            return 0
        info = await self.redis.xinfo_stream(env.keys.notification_stream)
        return int(info["entries-added"])

    async def cleanup(self) -> None:
        for env in self.envs:
            pattern = f"arq:*{env.keys.sync_job_id_prefix}*"  # the scheduler's jobs
            arqs = [key async for key in self.redis.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(arqs), 1000):
                await self.redis.delete(*arqs[start : start + 1000])
            await env.cleanup()
            self.report.worker_exits.extend(env.worker_exits)

    # 1. Rounds ----------------------------------------------------------------------------

    async def round(
        self,
        env: JobsEnv,
        worker_pid: int,
        name: str,
        syncs: int,
        start: Callable[[], Awaitable[None]],
    ) -> Round:
        """Start a round and measure it until every calendar has been listed once more and
        nothing runs or waits."""
        before = await self.requests()
        notes = await self.announced(env)
        share = CoreShare(worker_pid)
        cpu0, t0 = cpu_seconds(worker_pid), time.perf_counter()
        await start()

        async def done() -> bool:
            listed = (await self.requests()).get("events.list", 0) - before.get("events.list", 0)
            return listed >= syncs and await self.settled(env)

        await wait_for(done, f"{name}: {syncs} syncs")
        wall, cpu = time.perf_counter() - t0, cpu_seconds(worker_pid) - cpu0
        others = share.others_percent()
        after = await self.requests()
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
        announced = await self.announced(env) - notes
        return Round(name, syncs, delta, announced, wall, cpu, others)

    async def rounds(self) -> None:
        plan = self.plan
        env, users = await self.users("u", plan.users, plan.events)
        s = env.settings
        self.report.settings = {
            "worker_max_jobs": s.worker_max_jobs,
            "worker_poll_delay": s.worker_poll_delay,
            "sync_tick_seconds": s.sync_tick_seconds,
            "sync_jitter": s.sync_jitter,
            "sync_page_size": s.sync_page_size,
        }
        schedule = SyncSchedule(self.redis, env.keys)
        changes: dict[str, object] = {
            "sync_interval_seconds": HOUR,
            "sync_calendar_list_interval_seconds": 6 * HOUR,
        }

        async def link_all() -> None:
            for user in users:
                await schedule.add_user(user)  # what a link does: the calendar list is due

        async def all_due_now() -> None:
            members = await self.redis.zrange(env.keys.sync_due, 0, -1)
            calendars = [m for m in members if parse_member(m.decode())[1]]
            await self.redis.zadd(env.keys.sync_due, dict.fromkeys(calendars, 0))

        async with env.worker("gcal", **changes) as worker:
            self.report.first_round = await self.round(
                env, worker.pid, "first: calendar list + full listing", len(users), link_all
            )
            for n in range(plan.rounds):
                self.report.rounds.append(
                    await self.round(env, worker.pid, f"no change {n + 1}", len(users), all_due_now)
                )
        self.report.memory = await self.memory(env)
        self.report.ceiling = await self.ceiling(env, len(users))

    async def ceiling(self, env: JobsEnv, jobs: int) -> Ceiling:
        """arq's no-op job, ``jobs`` put on the queue at once as the scheduler puts syncs."""
        async with env.worker("noop") as worker:
            await self.noops(env, 50)  # warm-up
            share = CoreShare(worker.pid)
            cpu0, t0 = cpu_seconds(worker.pid), time.perf_counter()
            await self.noops(env, jobs)
            wall, cpu = time.perf_counter() - t0, cpu_seconds(worker.pid) - cpu0
            return Ceiling(jobs, wall, cpu, share.others_percent())

    async def noops(self, env: JobsEnv, count: int) -> None:
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            for _ in range(count):
                job_id = env.job_id()
                payload: dict[str, Any] = {"t": None, "f": NOOP_JOB, "a": [], "k": {}, "et": now_ms}
                pipe.set(job_key_prefix + job_id, wire.dumps(payload), px=86_400_000)
                pipe.zadd(env.keys.queue, {job_id: now_ms})
            await pipe.execute()

        async def drained() -> bool:
            return bool(await self.redis.zcard(env.keys.queue) == 0)

        await wait_for(drained, f"{count} no-op jobs")

    # 2. Memory ----------------------------------------------------------------------------

    async def memory(self, env: JobsEnv) -> list[Memory]:
        pattern = f"{env.prefix}:sync:*:seen"
        keys = [key async for key in self.redis.scan_iter(match=pattern, count=1000)]
        measured = await self.measure(keys)
        natural = measured.encoding
        # The other encoding, on copies made under a threshold that forces it.
        threshold = "hash-max-listpack-entries"
        before = (await self.redis.config_get(threshold))[threshold]
        force = str(measured.events // measured.hashes + 1) if natural == "hashtable" else "0"
        copies = []
        await self.redis.config_set(threshold, force)
        try:
            for n, key in enumerate(keys[: self.plan.copies]):
                copy = f"{env.prefix}:bench:seen-copy:{n}"
                fields: dict[bytes, bytes] = await self.redis.hgetall(key)  # type: ignore[misc]
                await self.redis.hset(copy, mapping=fields)  # type: ignore[misc]
                copies.append(copy)
            other = await self.measure(copies)
        finally:
            await self.redis.config_set(threshold, before)
            if copies:
                await self.redis.delete(*copies)
        return [
            dataclasses.replace(measured, name="as synced"),
            dataclasses.replace(other, name=f"copies, {threshold} {force}"),
        ]

    async def measure(self, keys: list[Any]) -> Memory:
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.memory_usage(key, samples=0)
                pipe.hlen(key)
                pipe.object("encoding", key)
            answers = await pipe.execute()
        usage, lengths, encodings = answers[0::3], answers[1::3], answers[2::3]
        names = sorted({e.decode() if isinstance(e, bytes) else str(e) for e in encodings})
        return Memory("", "/".join(names), len(keys), sum(lengths), sum(usage))

    # 3., 4. Latency ------------------------------------------------------------------------

    async def first_syncs(self, env: JobsEnv, users: list[str]) -> None:
        """Schedule the users and wait until every calendar has been listed once."""
        schedule = SyncSchedule(self.redis, env.keys)
        for user in users:
            await schedule.add_user(user)

        async def listed() -> bool:
            everything = len(users) * LATENCY_EVENTS
            return await self.announced(env) >= everything and await self.settled(env)

        await wait_for(listed, "the first syncs")

    async def changes(self, env: JobsEnv, users: list[str], count: int) -> tuple[float, ...]:
        """Change events one at a time at the emulator; seconds until each one's entry."""
        pause = random.Random(10)  # noqa: S311 - a reproducible phase, not a secret
        stream = env.keys.notification_stream
        newest = await self.redis.xrevrange(stream, count=1)
        cursor = newest[0][0].decode() if newest else "0-0"
        seconds = []
        for i in range(count):
            user, summary = users[i % len(users)], f"change {i}"
            await asyncio.sleep(pause.uniform(0, PAUSE_S))
            sent = time.time()
            async with self.http.patch(
                f"{self.emulator_url}/calendar/v3/calendars/primary/events/{EVENT_ID}",
                json={"summary": summary},
                headers={"Authorization": f"Bearer {env.access_tokens[user]}"},
            ) as resp:
                await resp.read()
            entry_ms, cursor = await self.entry(stream, cursor, user, summary)
            seconds.append(entry_ms / 1000 - sent)
        return tuple(seconds)

    async def entry(self, stream: str, cursor: str, user: str, summary: str) -> tuple[int, str]:
        """The time (ms, Redis's clock) of the event_updated entry for this change."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for _, entries in await self.redis.xread({stream: cursor}, block=1000) or []:
                for raw_id, fields in entries:
                    cursor = raw_id.decode()
                    note = parse_notification(fields[b"json"])
                    if (
                        isinstance(note, EventUpdated)
                        and note.user_id == user
                        and note.event.get("summary") == summary
                    ):
                        return int(cursor.split("-")[0]), cursor
        raise RuntimeError(f"{summary!r} of {user} never reached the stream")

    async def push(self) -> None:
        plan = self.plan
        env, users = await self.users("p", plan.push_users, LATENCY_EVENTS)
        auth_web = AuthWebProcess(env.settings_json)
        try:
            async with auth_web:
                webhook = f"{auth_web.url}/webhooks/google/calendar"
                changes: dict[str, object] = {"push_webhook_url": webhook}
                async with env.worker("gcal", **changes):
                    await self.first_syncs(env, users)

                    async def channels() -> bool:
                        async with self.http.get(f"{self.emulator_url}/_emulator/channels") as r:
                            opened = (await r.json())["channels"]
                        return len(opened) >= len(users)

                    await wait_for(channels, "a push channel per calendar")
                    seconds = await self.changes(env, users, plan.push_changes)
        finally:
            self.report.auth_web_exits.append(auth_web.returncode)
        self.report.latencies.append(Latency("by push", seconds))

    async def polling(self) -> None:
        plan = self.plan
        env, users = await self.users("q", plan.poll_users, LATENCY_EVENTS)
        s = env.settings
        bound = plan.poll_interval_s * (1 + s.sync_jitter) + 1.25 * s.sync_tick_seconds
        async with env.worker("gcal", sync_interval_seconds=plan.poll_interval_s):
            await self.first_syncs(env, users)
            seconds = await self.changes(env, users, plan.poll_changes)
        name = f"by polling, interval {plan.poll_interval_s:g} s, no push"
        self.report.latencies.append(Latency(name, seconds, bound_s=bound))


async def redis_facts(redis: Redis) -> dict[str, str]:
    info = await redis.info("server")
    facts = {"version": str(info.get("redis_version", "?"))}
    for name in ("hash-max-listpack-entries", "hash-max-listpack-value"):
        facts.update({k: str(v) for k, v in (await redis.config_get(name)).items()})
    return facts


async def run(plan: Plan, report: SyncReport) -> None:
    async with backends() as b:
        report.redis = await redis_facts(b.redis)
        bench = Run(plan, report, b.redis, b.redis_server.url, b.emulator.url, b.http)
        try:
            await bench.rounds()
            await bench.push()
            await bench.polling()
        finally:
            await bench.cleanup()


async def main(*, quick: bool = False, smoke: bool = False, output: Path | None = None) -> Path:
    """Run every part, write the JSON result file, print the tables; returns the file."""
    plan = Plan.choose(quick=quick, smoke=smoke)
    started = dt.datetime.now(dt.UTC)
    report = SyncReport(plan=dataclasses.asdict(plan), started_at=started.isoformat())
    with driver_off_the_worker_core():
        await run(plan, report)
    report.finished_at = dt.datetime.now(dt.UTC).isoformat()
    path = output or RESULTS_DIR / f"sync-{plan.mode}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    sync_report.write(report, path)
    print(sync_report.table(report))
    print(f"\nresult file: {path}")
    return path
