"""The Python producer client: enqueue jobs and await their typed results.

    async with JobClient(redis, RedisKeys("gcal")) as jobs:
        result = await jobs.run("get_events", GetEventsArgs(user_id="u1", ...), timeout=30)
        if result.ok: ...
        else: result.error.code, result.error.retryable

Waiting is woken by the job's completion notification (one pattern subscription per client,
shared by every awaited job), never by polling. The client subscribes before it reads the
result key, so a result that lands in between is never missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from arq.constants import expires_extra_ms, job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from pydantic import BaseModel
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from gcal.keys import JOB_ID_RE, JOB_ID_RULE, RedisKeys
from gcal.tasks import cancel
from jobs import wire
from jobs.registry import JOBS
from jobs.results import JobResult

log = logging.getLogger(__name__)

# arq's enqueue_job (arq 0.28: WATCH, EXISTS, MULTI, PSETEX, ZADD, EXEC) and the wake signal,
# as one atomic step: one round trip instead of five (docs/contract.md, "The commands").
# KEYS: arq's job key, arq's result key, our result key, the queue. ARGV: the payload, its
# expiry (ms), the score, the job id, the wake channel. Returns 1 if enqueued, 0 if the id
# was already known (queued, running, or with a result).
_ENQUEUE = """
if redis.call('EXISTS', KEYS[1], KEYS[2], KEYS[3]) > 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4])
redis.call('PUBLISH', ARGV[5], '')
return 1
"""


class JobClient:
    """Enqueues jobs on the gcal-jobs queue and awaits their results."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._enqueue = redis.register_script(_ENQUEUE)
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = False  # Redis has confirmed the result subscription

    async def __aenter__(self) -> JobClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await cancel(self._listener)
        self._listener = None
        self._subscribed = False
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None

    async def enqueue(
        self,
        job: str,
        args: BaseModel | Mapping[str, Any],
        *,
        job_id: str | None = None,
    ) -> str:
        """Put ``job`` on the queue; returns its id.

        Enqueueing an id that is queued, running, or has a result (kept 24 h) is a no-op that
        returns the same id: a producer retrying its own enqueue cannot run a job twice.
        """
        job_id = job_id or uuid.uuid4().hex
        await self._queue(job, args, job_id)
        return job_id

    async def _queue(self, job: str, args: BaseModel | Mapping[str, Any], job_id: str) -> bool:
        """:meth:`enqueue`'s work: whether the job was queued (False: the id was known
        already)."""
        if job not in JOBS:
            raise ValueError(f"unknown job {job!r}; one of {', '.join(sorted(JOBS))}")
        kwargs = (
            args.model_dump(mode="json", exclude_none=True)
            if isinstance(args, BaseModel)
            else dict(args)
        )
        if not JOB_ID_RE.fullmatch(job_id):
            raise ValueError(f"a job id must be {JOB_ID_RULE}")
        now = timestamp_ms()
        payload = serialize_job(job, (), kwargs, None, now, serializer=wire.dumps)
        # Known ids: queued or running (arq's payload), or with a result (arq keeps its copy
        # 5 minutes, ours 24 h). Idle workers are woken to read the queue now.
        queued = await self._enqueue(
            keys=[job_key_prefix + job_id, result_key_prefix + job_id, self._keys.result(job_id),
                  self._keys.queue],
            args=[payload, expires_extra_ms, now, job_id, self._keys.queue_wake],
        )  # fmt: skip
        return bool(queued == 1)

    # `timeout` as a parameter (ASYNC109): the wait is the whole point of these two calls.
    async def result(self, job_id: str, *, timeout: float) -> JobResult:  # noqa: ASYNC109
        """The job's result, waiting up to ``timeout`` seconds (then ``TimeoutError``)."""
        waiter = await self._watch(job_id)
        try:
            return await self._await_result(job_id, waiter, timeout)
        finally:
            self._unwatch(job_id, waiter)

    async def run(
        self,
        job: str,
        args: BaseModel | Mapping[str, Any],
        *,
        timeout: float,  # noqa: ASYNC109
        job_id: str | None = None,
    ) -> JobResult:
        """Enqueue ``job`` and await its result."""
        job_id = job_id or uuid.uuid4().hex
        waiter = await self._watch(job_id)
        # Subscribed before the job is queued, a new job's result is announced to this client:
        # there is nothing to read before that (a known id's may be there already).
        subscribed = self._subscribed
        try:
            queued = await self._queue(job, args, job_id)
            return await self._await_result(
                job_id, waiter, timeout, read_first=not (queued and subscribed)
            )
        finally:
            self._unwatch(job_id, waiter)

    async def _await_result(
        self, job_id: str, waiter: asyncio.Future[None], within: float, *, read_first: bool = True
    ) -> JobResult:
        raw = await self._redis.get(self._keys.result(job_id)) if read_first else None
        if raw is None:
            async with asyncio.timeout(within):
                await asyncio.shield(waiter)
            raw = await self._redis.get(self._keys.result(job_id))
            if raw is None:
                # Woken without a result: the subscription dropped. Wait again, afresh.
                return await self.result(job_id, timeout=within)
        return JobResult.model_validate_json(raw)

    async def _watch(self, job_id: str) -> asyncio.Future[None]:
        await self._ensure_listening()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, set()).add(waiter)
        return waiter

    def _unwatch(self, job_id: str, waiter: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None:
            waiters.discard(waiter)
            if not waiters:
                del self._waiters[job_id]

    async def _ensure_listening(self) -> None:
        if self._listener is not None and not self._listener.done():
            return
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub()
            await self._pubsub.psubscribe(self._keys.result_channel("*"))
        self._listener = asyncio.create_task(self._listen(self._pubsub))

    async def _listen(self, pubsub: PubSub) -> None:
        try:
            async for message in pubsub.listen():
                if message["type"] == "pmessage":
                    self._wake(message["data"])
                elif message["type"] == "psubscribe":
                    self._subscribed = True
        except RedisError as err:
            # Waiters time out; the next wait subscribes afresh. Wake them now so they re-read.
            log.warning("result subscription lost (%s); will resubscribe", type(err).__name__)
            self._pubsub = None
            self._subscribed = False
            for waiters in self._waiters.values():
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

    def _wake(self, data: bytes) -> None:
        try:
            job_id = json.loads(data)["job_id"]
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed completion notification")
            return
        for waiter in self._waiters.get(job_id, ()):
            if not waiter.done():
                waiter.set_result(None)
