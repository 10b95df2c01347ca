"""The worker stacks the comparison runs, behind one interface: start a worker pinned to the
worker CPU, enqueue a job and learn when its completion was announced, read its result back.

    async with Ours(env, client) as stack:
        async with stack.worker() as proc:              # proc.pid: CPU time, RSS from /proc
            job_id, arrival = await stack.submit("get_events", args)
            notified_at = await arrival                 # perf_counter() at the notification

* :class:`Ours`: the product's worker (``bench.worker_child`` "gcal": ``create_worker``), fed
  by :class:`jobs.client.JobClient`; completion: our ``job_completed`` on the job's channel.
* :class:`CeleryBaseline`: ``bench.celery_baseline``'s worker at one prefetch multiplier, fed
  by Celery's own ``send_task`` (in a thread, as kombu's client blocks); completion: its note.
* :class:`Ceiling`: arq's no-op job (``bench.worker_child`` "noop"). It announces nothing, so
  completion is arq's own result key, polled every 2 ms (``bench.load.ArqCompletions``).
  :class:`TunedCeiling`: the same on the product worker's Redis pool ("noop-tuned").

Jobs are named and argued as our contract has them; a stack translates where it differs.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import json
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from arq.connections import ArqRedis

from bench import celery_baseline
from bench.celery_baseline import BaselineConfig
from bench.children import WORKER_CPU
from bench.jobs_env import JOB_TIMEOUT, JobsEnv
from bench.load import ArqCompletions
from bench.open_loop import Notifications
from bench.worker_child import NOOP_JOB, WorkerProcess
from gcal.tasks import cancel
from jobs import wire
from jobs.client import JobClient


class Stack(abc.ABC):
    """One way of running the benchmark's jobs; an async context around its producer side."""

    name: str

    def __init__(self, env: JobsEnv) -> None:
        self.env = env
        self._exit = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Stack:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._exit.aclose()

    @contextlib.asynccontextmanager
    async def worker(self) -> AsyncIterator[WorkerProcess]:
        """A fresh worker on the worker CPU; afterwards its queue is emptied (jobs a timed-out
        run left behind must not reach the next worker) and its exit code kept in the env."""
        process = self._process()
        try:
            async with process:
                yield process
        finally:
            self.env.worker_exits.append(process.returncode)
            await self.env.redis.delete(*self._queue_keys())

    @abc.abstractmethod
    def _process(self) -> WorkerProcess: ...

    @abc.abstractmethod
    def _queue_keys(self) -> list[str]: ...

    @abc.abstractmethod
    async def submit(self, job: str, args: dict[str, Any]) -> tuple[str, asyncio.Future[float]]:
        """Enqueue ``job``; returns its id and a future of its notification's arrival time."""

    @abc.abstractmethod
    async def result(self, job_id: str) -> dict[str, Any]:
        """The job's ``data`` as its result key holds it (raises if it failed)."""


class Ours(Stack):
    name = "ours"

    def __init__(self, env: JobsEnv, client: JobClient) -> None:
        super().__init__(env)
        self._client = client
        self._notes = Notifications(env.redis, env.keys.result_channel("*"))

    async def __aenter__(self) -> Ours:
        await self._exit.enter_async_context(self._notes)
        return self

    def _process(self) -> WorkerProcess:
        return WorkerProcess("gcal", self.env.settings_json, cpu=WORKER_CPU)

    def _queue_keys(self) -> list[str]:
        return [self.env.keys.queue]

    async def submit(self, job: str, args: dict[str, Any]) -> tuple[str, asyncio.Future[float]]:
        job_id = self.env.job_id()
        arrival = self._notes.expect(job_id)
        await self._client.enqueue(job, args, job_id=job_id)
        return job_id, arrival

    async def result(self, job_id: str) -> dict[str, Any]:
        return await _read_result(self.env, self.env.keys.result(job_id))


def celery_name(prefetch_multiplier: int) -> str:
    """The Celery baseline's name in results, per prefetch multiplier."""
    return f"celery prefetch x{prefetch_multiplier}"


class CeleryWorkerProcess(WorkerProcess):
    """``python -m bench.celery_baseline``, configured on stdin like the arq workers."""

    module = "bench.celery_baseline"

    def __init__(self, config: BaselineConfig, *, cpu: int) -> None:
        super().__init__(f"celery-m{config.prefetch_multiplier}", {}, cpu=cpu)
        self.baseline = config

    def config(self) -> str:
        return self.baseline.to_json()


class CeleryBaseline(Stack):
    def __init__(self, env: JobsEnv, prefetch_multiplier: int) -> None:
        super().__init__(env)
        self.config = BaselineConfig(
            redis_url=env.settings_json["redis_url"],
            prefix=env.prefix,
            calendar_api_base=env.settings_json["calendar_api_base"],
            prefetch_multiplier=prefetch_multiplier,
        )
        self.names = self.config.names
        self.name = celery_name(prefetch_multiplier)
        self._notes = Notifications(env.redis, self.names.result_channel("*"))
        self._app = celery_baseline.make_app(self.config)
        # kombu's producer blocks; a thread keeps the event loop (and its timestamps) free.
        self._sender = ThreadPoolExecutor(max_workers=2, thread_name_prefix="celery-send")

    async def __aenter__(self) -> CeleryBaseline:
        self._exit.callback(self._app.close)
        self._exit.callback(self._sender.shutdown)
        await self._exit.enter_async_context(self._notes)
        # The worker's tasks read the users' access tokens from Redis (unsealed).
        tokens = self.env.access_tokens
        for user_id, token in tokens.items():
            await self.env.redis.set(self.names.token(user_id), json.dumps({"access_token": token}))
        return self

    def _process(self) -> WorkerProcess:
        return CeleryWorkerProcess(self.config, cpu=WORKER_CPU)

    def _queue_keys(self) -> list[str]:
        return self.names.broker_queue_keys()

    async def submit(self, job: str, args: dict[str, Any]) -> tuple[str, asyncio.Future[float]]:
        job_id = self.env.job_id()
        arrival = self._notes.expect(job_id)
        # The task reads one page (max_results); "stop after N events" is ours alone.
        kwargs = {k: v for k, v in args.items() if k != "max_events"}
        send = functools.partial(self._app.send_task, job, kwargs=kwargs, task_id=job_id)
        await asyncio.get_running_loop().run_in_executor(self._sender, send)
        return job_id, arrival

    async def result(self, job_id: str) -> dict[str, Any]:
        return await _read_result(self.env, self.names.result(job_id))


class Ceiling(Stack):
    name = "arq no-op"
    kind = "noop"  # bench.worker_child's

    def __init__(self, env: JobsEnv) -> None:
        super().__init__(env)
        self._arq = ArqRedis(
            connection_pool=env.redis.connection_pool,
            job_serializer=wire.dumps,
            job_deserializer=wire.loads,
            default_queue_name=env.keys.queue,
        )
        self._completions = ArqCompletions(env.redis)

    async def __aenter__(self) -> Ceiling:
        poller = asyncio.create_task(self._completions.poll())
        self._exit.push_async_callback(cancel, poller)
        return self

    def _process(self) -> WorkerProcess:
        return WorkerProcess(self.kind, self.env.settings_json, cpu=WORKER_CPU)

    def _queue_keys(self) -> list[str]:
        return [self.env.keys.queue]

    async def submit(self, job: str, args: dict[str, Any]) -> tuple[str, asyncio.Future[float]]:
        job_id = self.env.job_id()
        await self._arq.enqueue_job(NOOP_JOB, _job_id=job_id)
        waiting = asyncio.ensure_future(self._completions.wait(job_id, within=JOB_TIMEOUT))
        arrival: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        def done(task: asyncio.Future[None]) -> None:
            if arrival.done():
                return
            if task.cancelled():
                arrival.cancel()
            elif (error := task.exception()) is not None:
                arrival.set_exception(error)
            else:
                arrival.set_result(time.perf_counter())

        def abandoned(future: asyncio.Future[float]) -> None:
            if future.cancelled():
                waiting.cancel()

        waiting.add_done_callback(done)
        arrival.add_done_callback(abandoned)
        return job_id, arrival

    async def result(self, job_id: str) -> dict[str, Any]:
        return {}


class TunedCeiling(Ceiling):
    """arq's no-op job on the Redis pool the product's worker runs on (``worker.redis_pool``):
    what is left of ours against it is ours, not the pool."""

    name = "arq no-op, tuned pool"
    kind = "noop-tuned"


async def _read_result(env: JobsEnv, key: str) -> dict[str, Any]:
    raw = await env.redis.get(key)
    if raw is None:
        raise LookupError(f"no result at {key}")
    result: dict[str, Any] = json.loads(raw)
    if not result["ok"]:
        raise RuntimeError(f"job failed: {result.get('error')}")
    data: dict[str, Any] = result["data"]
    return data
