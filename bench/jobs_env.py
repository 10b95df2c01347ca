"""The world one jobs-benchmark run works in, and the cleanup of everything it wrote.

    env = JobsEnv(emulator_url, redis, redis_url, accounts=50)
    await env.link_users(http)          # seeded emulator accounts -> users u0..u49
    async with env.worker("gcal") as w:  # a worker child on CPU 1 (bench.worker_child)
        ...  # enqueue with JobClient(redis, env.keys), ids from env.job_id()
    await env.cleanup()

A run has its own Redis prefix (``bench-<hex>``) and settings that point every Google URL at
the emulator and switch our rate limiter off (quotas 0). Users are linked as auth_web would
link them: the emulator's minted tokens, sealed with the run's token key, expiring in an hour
(so no refresh happens). arq's own ``arq:*`` keys are global, so every job id comes from
:meth:`JobsEnv.job_id` and the keys of exactly those jobs are deleted afterwards; the Redis
database is never flushed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from arq.constants import (
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from redis.asyncio import Redis

from bench.emulator_rate import EmulatorProcess
from bench.worker_child import WorkerProcess
from devstack.redis_server import RedisServer
from emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from gcal.crypto import Cipher, generate_key
from gcal.keys import RedisKeys
from gcal.settings import Settings
from gcal.tokens import StoredTokens, TokenStore

SCOPE = "https://www.googleapis.com/auth/calendar"  # events.list and calendarList.list
SEED_START = dt.datetime(2030, 1, 7, tzinfo=dt.UTC)
SEEDED_EVENTS = 250  # one an hour from SEED_START
WINDOW = (SEED_START, SEED_START + dt.timedelta(days=11))  # covers every seeded event
JOB_TIMEOUT = 30.0


class JobsEnv:
    """One run's Redis prefix, the emulator, settings, linked users, and every job id used (so
    arq's global ``arq:*`` keys of this run can be deleted afterwards)."""

    def __init__(self, emulator_url: str, redis: Redis, redis_url: str, *, accounts: int) -> None:
        self.redis = redis
        self.accounts = accounts
        self.prefix = f"bench-{uuid.uuid4().hex[:12]}"
        self.keys = RedisKeys(self.prefix)
        self.emulator_url = emulator_url
        self.job_ids: list[str] = []
        self._ids = itertools.count()
        self.users: list[str] = []
        self.access_tokens: dict[str, str] = {}
        self.worker_exits: list[int | None] = []
        self.settings_json: dict[str, Any] = {
            # The emulator's own client, whose grants the seed mints: a run longer than an
            # access token's hour refreshes them, as production does.
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "authorization_endpoint": f"{emulator_url}/o/oauth2/v2/auth",
            "token_endpoint": f"{emulator_url}/token",
            "revoke_endpoint": f"{emulator_url}/revoke",
            "calendar_api_base": f"{emulator_url}/calendar/v3/",
            "batch_endpoint": f"{emulator_url}/batch/calendar/v3",
            "token_keys": [generate_key()],
            "api_keys": ["bench-api-key"],
            "redis_url": redis_url,
            "redis_prefix": self.prefix,
            # The limiter must not throttle: measure the worker, not the quota.
            "quota_user_per_window": 0,
            "quota_project_per_window": 0,
            "job_timeout": JOB_TIMEOUT,
            # Metrics are still counted; no port is taken on a machine others use.
            "worker_metrics_port": 0,
        }
        self.settings = Settings(**self.settings_json)

    def job_id(self) -> str:
        """A job id unique to this run (and remembered for :meth:`cleanup`)."""
        job_id = f"{self.prefix}-{next(self._ids)}"
        self.job_ids.append(job_id)
        return job_id

    @contextlib.asynccontextmanager
    async def worker(
        self, kind: str, cpu: int = 1, /, **changes: object
    ) -> AsyncIterator[WorkerProcess]:
        """A worker child on CPU ``cpu`` with these settings ``changes``; its exit code is
        kept in ``worker_exits``."""
        process = WorkerProcess(kind, {**self.settings_json, **changes}, cpu=cpu)
        try:
            async with process:
                yield process
        finally:
            self.worker_exits.append(process.returncode)

    async def link_users(self, http: aiohttp.ClientSession) -> None:
        """Seed emulator accounts and store their tokens sealed, as auth_web would."""
        self.users.extend(await self.link(http, label="u", first=0, events=SEEDED_EVENTS))

    async def link(
        self,
        http: aiohttp.ClientSession,
        *,
        label: str,
        first: int,
        events: int,
        start: dt.datetime = SEED_START,
    ) -> list[str]:
        """Seed ``accounts`` emulator accounts from number ``first`` with ``events`` events
        each (one an hour from ``start``), store their tokens sealed as auth_web would, and
        return their user ids (``<label>0``...). Their access tokens are kept in
        ``access_tokens`` too."""
        async with http.post(
            f"{self.emulator_url}/_emulator/seed",
            json={
                "accounts": self.accounts,
                "first": first,
                "events_per_calendar": events,
                "start": start.isoformat(),
                "grant": {"scopes": [SCOPE]},
            },
        ) as resp:
            seeded: dict[str, Any] = await resp.json()
        store = TokenStore(self.redis, self.keys, Cipher(self.settings.token_keys))
        now = dt.datetime.now(dt.UTC)
        users: list[str] = []
        for n, (email, minted) in enumerate(sorted(seeded["tokens"].items())):
            user_id = f"{label}{n}"
            tokens = StoredTokens(
                access_token=minted["access_token"],
                refresh_token=minted["refresh_token"],
                expires_at=now + dt.timedelta(hours=1),  # as the seed minted it
                scopes=frozenset({SCOPE}),
                email=email,
                linked_at=now,
            )
            await store.put(user_id, tokens)
            self.access_tokens[user_id] = minted["access_token"]
            users.append(user_id)
        return users

    async def set_latency(
        self, http: aiohttp.ClientSession, latency_ms: int, *, endpoint: str = "*"
    ) -> None:
        """From now on the emulator answers ``endpoint`` (``*``: every Calendar endpoint)
        ``latency_ms`` late; 0 leaves no fault (earlier fault rules are cleared either way)."""
        faults = f"{self.emulator_url}/_emulator/faults"
        await (await http.delete(faults)).release()
        if latency_ms:
            rule = {"endpoint": endpoint, "latency_ms": latency_ms}
            await (await http.post(faults, json=rule)).release()

    async def forget_jobs(self) -> None:
        """Delete the results (ours, the Celery baseline's) and arq's keys of the jobs made so
        far. Called between measurements: a full comparison makes some 10^5 jobs whose results
        (up to 160 KB each) would otherwise fill the memory of the machine within one run."""
        ids, self.job_ids = self.job_ids, []
        keys = [
            key
            for job_id in ids
            for key in (
                self.keys.result(job_id),
                f"{self.prefix}:celery:result:{job_id}",  # bench.celery_baseline's names
                *(p + job_id for p in _ARQ_PREFIXES),
            )
        ]
        await self._delete(keys)

    async def cleanup(self) -> None:
        """Delete every key under this run's prefix and arq's keys of every job id it made."""
        ours = [key async for key in self.redis.scan_iter(match=f"{self.prefix}:*", count=1000)]
        await self._delete([*ours, *(p + job_id for job_id in self.job_ids for p in _ARQ_PREFIXES)])

    async def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            await self.redis.delete(*keys[start : start + 1000])


_ARQ_PREFIXES = (job_key_prefix, result_key_prefix, in_progress_key_prefix, retry_key_prefix)


@dataclasses.dataclass(frozen=True)
class Bench:
    """What a jobs benchmark runs against: the environment, its HTTP session, the emulator."""

    env: JobsEnv
    http: aiohttp.ClientSession
    emulator: EmulatorProcess
    redis_server: RedisServer


@dataclasses.dataclass(frozen=True)
class Backends:
    """What every benchmark talks to: its own Redis server and the emulator's process."""

    redis_server: RedisServer
    redis: Redis
    emulator: EmulatorProcess
    http: aiohttp.ClientSession  # raises for an HTTP error status


@contextlib.asynccontextmanager
async def backends() -> AsyncIterator[Backends]:
    """A private Redis (never another process's), the emulator in its own process, and an
    HTTP session; all stopped on exit."""
    server = await asyncio.to_thread(RedisServer.start)
    redis = Redis.from_url(server.url)
    try:
        async with (
            EmulatorProcess() as emu,
            aiohttp.ClientSession(raise_for_status=True) as http,
        ):
            yield Backends(server, redis, emu, http)
    finally:
        await redis.aclose()
        await asyncio.to_thread(server.stop)


@contextlib.asynccontextmanager
async def bench_env(accounts: int) -> AsyncIterator[Bench]:
    """:func:`backends` with ``accounts`` linked users; everything removed and stopped on
    exit."""
    async with backends() as b:
        env = JobsEnv(b.emulator.url, b.redis, b.redis_server.url, accounts=accounts)
        try:
            await env.link_users(b.http)
            yield Bench(env, b.http, b.emulator, b.redis_server)
        finally:
            await env.cleanup()
