"""The job pipeline as tests run it: producer client -> real Redis -> worker -> emulator.

``Pipeline`` holds a user linked to an emulator account (with the scopes auth_web asks for by
default: the jobs' own, least privilege), settings pointing every Google URL at the emulator,
the producer client, and workers started in the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from arq.connections import ArqRedis
from redis.asyncio import Redis

from emulator.config import ClientConfig
from gcal.crypto import Cipher
from gcal.envfile import process_env
from gcal.keys import RedisKeys
from gcal.settings import Settings
from gcal.tokens import StoredTokens, TokenStore
from jobs import wire
from jobs.client import JobClient
from jobs.registry import default_scopes
from jobs.results import JobResult
from tests.harness import Emulator
from tests.services import CLIENT_ID, CLIENT_SECRET, settings_for
from worker.arq_worker import GcalWorker
from worker.factory import create_worker


def job_settings(emulator: Emulator, prefix: str, **changes: object) -> Settings:
    """Settings for workers in tests: fast polling, no real backoff waits."""
    values: dict[str, object] = {
        "worker_poll_delay": 0.01,
        "job_timeout": 10.0,
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
        "worker_drain_seconds": 1,
        # The sync scheduler runs only in the tests about it (it would enqueue jobs of its own).
        "sync_enabled": False,
        # Many workers share this host: a test that scrapes metrics picks a port of its own.
        "worker_metrics_port": 0,
    }
    values.update(changes)
    return settings_for(emulator, "http://127.0.0.1/unused", prefix, **values)


@dataclass
class Pipeline:
    emulator: Emulator
    redis: Redis
    settings: Settings
    client: JobClient
    email: str = "alice@example.com"
    workers: list[tuple[GcalWorker, asyncio.Task[Any]]] = field(default_factory=list)

    @property
    def keys(self) -> RedisKeys:
        return RedisKeys(self.settings.redis_prefix)

    @property
    def arq(self) -> ArqRedis:
        """arq's own producer on this queue, for what ``JobClient`` refuses to enqueue."""
        return ArqRedis(
            connection_pool=self.redis.connection_pool,
            job_serializer=wire.dumps,
            default_queue_name=self.keys.queue,
        )

    async def link(
        self, user_id: str = "u1", email: str | None = None, *, scopes: Iterable[str] | None = None
    ) -> None:
        """Link ``user_id`` to an emulator account (tokens stored as auth_web would), granting
        ``scopes``: by default those auth_web asks for by default."""
        granted = tuple(default_scopes() if scopes is None else scopes)
        access, refresh = self.emulator.grant(email or self.email, granted, client_id=CLIENT_ID)
        now = dt.datetime.now(dt.UTC)
        tokens = StoredTokens(
            access_token=access,
            refresh_token=refresh,
            expires_at=now + dt.timedelta(hours=1),
            scopes=frozenset(granted),
            email=email or self.email,
            linked_at=now,
        )
        await TokenStore(self.redis, self.keys, Cipher(self.settings.token_keys)).put(
            user_id, tokens
        )

    async def start_worker(self, **changes: object) -> GcalWorker:
        settings = self.settings.model_copy(update=changes) if changes else self.settings
        worker = create_worker(settings, handle_signals=False)
        task = asyncio.create_task(worker.main())
        self.workers.append((worker, task))
        return worker

    async def run(self, job: str, args: dict[str, Any], *, timeout: float = 20) -> JobResult:  # noqa: ASYNC109
        return await self.client.run(job, args, timeout=timeout)

    async def stop(self) -> None:
        """Let every worker's loop end by itself (arq's burst mode with no jobs left to
        start: it finishes running jobs and returns at an iteration boundary), then close it.
        Cancelling the loop instead can cut it off inside a Redis transaction."""
        for worker, task in self.workers:
            worker.burst = True
            worker.max_burst_jobs = 0
            worker.wake()
            await asyncio.wait_for(task, 30)
            await worker.close()
        self.workers.clear()


def url_of(redis: Redis) -> str:
    """The URL of the server ``redis`` is a client of."""
    where = redis.connection_pool.connection_kwargs
    return f"redis://{where['host']}:{where['port']}/{where.get('db', 0)}"


@contextlib.asynccontextmanager
async def pipeline(
    emulator: Emulator, redis: Redis, prefix: str, **changes: object
) -> AsyncIterator[Pipeline]:
    """Workers that use the Redis server ``redis`` talks to, and ``emulator`` as Google."""
    emulator.store.clients[CLIENT_ID] = ClientConfig(CLIENT_ID, CLIENT_SECRET, ("http://x/cb",))
    settings = job_settings(emulator, prefix, **{"redis_url": url_of(redis), **changes})
    client = JobClient(redis, RedisKeys(prefix))
    p = Pipeline(emulator, redis, settings, client)
    try:
        yield p
    finally:
        await p.stop()
        await client.close()


class WorkerProcess:
    """``python -m worker`` as a child process, with the given settings. Its log (stderr) is
    read as it comes, so a busy worker never blocks on a full pipe."""

    def __init__(self, settings: Settings, *args: str) -> None:
        self.settings = settings
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self._log: list[bytes] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> WorkerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "worker",
            *self.args,
            env={**os.environ, **process_env(self.settings)},
            stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read(self.proc))
        return self

    @property
    def log(self) -> bytes:
        """What the worker has logged so far."""
        return b"".join(self._log)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(65536):
            self._log.append(chunk)

    async def wait(self, within: float = 30) -> tuple[int, str]:
        """Exit code and stderr, once the process has exited (killed after ``within`` s)."""
        assert self.proc is not None
        assert self._reader is not None
        try:
            await asyncio.wait_for(self.proc.wait(), within)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await self._reader
        assert self.proc.returncode is not None
        return self.proc.returncode, b"".join(self._log).decode(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)


async def wait_until(predicate: Callable[[], bool], within: float = 20) -> None:
    """Wait for a condition of the system under test (checked every 10 ms), or fail."""
    async with asyncio.timeout(within):
        # The condition lives in another component (emulator state), with no event to await.
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def wait_until_async(check: Callable[[], Awaitable[bool]], within: float = 20) -> None:
    """:func:`wait_until` for a condition read over the network (state in Redis)."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - written by other processes
            await asyncio.sleep(0.02)
