"""arq's first read of a job, made by the claim script and handed to arq's ``run_job``.

arq 0.28's ``run_job`` opens by reading the job in a transaction of its own (GET its payload,
INCR and EXPIRE its try count, ZREM its abort mark when aborts are allowed): one more round
trip a job after the claim, waiting its turn on a busy loop. The worker's claim script
(``worker.arq_worker``) runs those same commands as it claims the job, and the job's task
starts with their replies in a context variable; the worker's pool answers ``run_job``'s
transaction from them, once, without going to Redis. Everything else ``run_job`` does is
arq's own.

The handed transaction checks that it holds exactly the commands the claim ran: were arq's
first read to change (it is pinned, 0.28), the job ends with ``internal`` rather than running
on replies to other commands.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any, Self

from arq.connections import ArqRedis
from arq.constants import abort_jobs_ss, job_key_prefix, retry_key_prefix
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

# arq's expiry of a job's try count (arq.worker.run_job's literal).
TRY_COUNT_EXPIRY_S = 88400


@dataclass(frozen=True, slots=True)
class FirstRead:
    """The replies of arq's first read of ``job_id``, as the claim script got them."""

    job_id: str
    payload: bytes | None  # None: no payload (expired, never written)
    job_try: int
    aborted: bool
    error: str  # Redis' first error among the commands (a key of the wrong type), or ""
    with_abort: bool  # whether the read took the abort mark (arq's allow_abort_jobs)

    def commands(self) -> list[tuple[Any, ...]]:
        """The commands arq's ``run_job`` queues for this read, as redis-py holds them."""
        retry_key = retry_key_prefix + self.job_id
        queued: list[tuple[Any, ...]] = [
            ("GET", job_key_prefix + self.job_id),
            ("INCRBY", retry_key, 1),
            ("EXPIRE", retry_key, TRY_COUNT_EXPIRY_S),
        ]
        if self.with_abort:
            queued.append(("ZREM", abort_jobs_ss, self.job_id))
        return queued

    def replies(self) -> list[Any]:
        """What redis-py's ``execute`` returns for :meth:`commands`."""
        if self.error:
            raise ResponseError(self.error)
        replies: list[Any] = [self.payload, self.job_try, True]
        if self.with_abort:
            replies.append(int(self.aborted))
        return replies


_HANDED: contextvars.ContextVar[FirstRead | None] = contextvars.ContextVar(
    "gcal_first_read", default=None
)


def handed(read: FirstRead) -> contextvars.Context:
    """A copy of the current context holding ``read``, for the task that runs its job."""
    context = contextvars.copy_context()
    context.run(_HANDED.set, read)
    return context


class HandedReadPipeline(Pipeline):
    """A transaction that never goes to Redis: it answers from a :class:`FirstRead`."""

    def __init__(self, redis: ArqRedis, read: FirstRead) -> None:
        super().__init__(redis.connection_pool, redis.response_callbacks, True, None)
        self._read = read

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        queued = [args for args, _ in self.command_stack]
        self.command_stack = []
        if queued != self._read.commands():
            raise RuntimeError("arq's first read of a job is not the one the claim made")
        return self._read.replies()


class FirstReadPool(ArqRedis):
    """arq's pool, whose first transaction in a task holding a :class:`FirstRead` is answered
    from it. Every other command and transaction goes to Redis."""

    @classmethod
    def sharing(cls, pool: ArqRedis) -> Self:
        """One of these over ``pool``'s connections and settings."""
        return cls(
            pool.connection_pool,
            job_serializer=pool.job_serializer,
            job_deserializer=pool.job_deserializer,
            default_queue_name=pool.default_queue_name,
            expires_extra_ms=pool.expires_extra_ms,
        )

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        read = _HANDED.get()
        if read is None or not transaction:
            return super().pipeline(transaction, shard_hint)
        _HANDED.set(None)  # in this task only: its later transactions go to Redis
        return HandedReadPipeline(self, read)
