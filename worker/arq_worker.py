"""Our subclass of arq's worker: whatever a producer puts in Redis, it keeps serving, and every
job whose id can be named ends with a typed result.

arq trusts what it reads from the queue; a few shapes of bad input stop its loop (an exception
raised in a job's bookkeeping task is re-raised by ``_poll_iteration``) or leave a producer
waiting forever. The guards, each where arq would otherwise fail:

===============================================  ==============================================
what a producer wrote                            what happens
===============================================  ==============================================
a queue member (job id) that is not UTF-8         removed from the queue, its arq keys deleted,
                                                  recorded in ``<p>:dead-letters`` (no result
                                                  key can be named for it)
an id outside the documented rule                 removed; ``invalid_request`` at its result key
a payload that is not a well-formed JSON job      ``invalid_request`` (``jobs.wire.loads_job``
(pickle, bad ``t``/``et``/``f``/``a``/``k``)      refuses it before arq reads it)
a queue member with no payload (expired or        ``invalid_request``
never written)
an unknown job name                               ``invalid_request``
tries used up by crashing workers                 ``internal``
any other failure in arq's handling of a job      ``internal``, logged with its cause; the job
(a payload key of the wrong Redis type...)        leaves the queue
===============================================  ==============================================

Results are written by :func:`jobs.results.record`, which cannot fail on what it is given.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from arq.constants import (
    abort_jobs_ss,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
    retry_key_prefix,
)
from arq.utils import timestamp_ms
from arq.worker import Worker
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from gcal.errors import GcalError, InternalError, InvalidRequest
from gcal.keys import DEAD_LETTER_STREAM_MAXLEN, JOB_ID_RE, JOB_ID_RULE, RedisKeys
from gcal.services import Services
from jobs import wire
from jobs.registry import JOBS
from jobs.results import JobError, JobResult, record
from worker.first_read import TRY_COUNT_EXPIRY_S, FirstRead, FirstReadPool, handed
from worker.redis_pool import tuned_arq_pool
from worker.reports import JobReports
from worker.wake import Waker

log = logging.getLogger(__name__)

UNKNOWN_JOB = "<unknown>"

# arq's read of the queue, its start_jobs checks and each job's first read, as one script.
# KEYS: the queue. ARGV: arq's in-progress key prefix, now (ms), in-progress timeout (ms), how
# many to claim, how many due ids to look at (arq's queue_read_limit), arq's job and try-count
# key prefixes, its abort set ("" when aborts are not allowed), the try count's expiry (s).
# Among the due ids, in score order, it claims those no worker is running (no in-progress
# mark), setting the mark as arq's own claim does, then runs the commands arq's run_job would
# send for the job next (see worker.first_read). Returns {waiting, {job id, score, payload,
# try, aborted, error, ...}}: waiting is 1 when an unclaimed id is left for lack of room. The
# ids are returned as found, not validated: the caller answers the ones it refuses. Running
# jobs stay in the queue until they end, so most of a busy queue's head is skipped here, in
# Redis, rather than sent to the worker to be checked one by one.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'WITHSCORES', 'LIMIT', 0,
                       ARGV[5])
local room = tonumber(ARGV[4])
local taken = {}
local waiting = 0
for i = 1, #due, 2 do
    local id = due[i]
    local mark = ARGV[1] .. id
    if redis.call('EXISTS', mark) == 0 then
        if room <= 0 then
            waiting = 1
            break
        end
        redis.call('SET', mark, '1', 'PX', ARGV[3])
        -- arq's first read of the job, its run_job's MULTI (GET the payload, INCR and EXPIRE
        -- the try, ZREM the abort mark), as MULTI runs it: every command, and the first
        -- error (a key of the wrong type) reported, not raised.
        local replies = {
            redis.pcall('GET', ARGV[6] .. id),
            redis.pcall('INCR', ARGV[7] .. id),
            redis.pcall('EXPIRE', ARGV[7] .. id, ARGV[9]),
        }
        if ARGV[8] ~= '' then replies[4] = redis.pcall('ZREM', ARGV[8], id) end
        local err = ''
        for _, reply in ipairs(replies) do
            if type(reply) == 'table' and reply['err'] and err == '' then err = reply['err'] end
        end
        local payload, try, abort = replies[1], replies[2], replies[4] or 0
        if type(payload) ~= 'string' then payload = '' end
        if type(try) ~= 'number' then try = 0 end
        if type(abort) ~= 'number' then abort = 0 end
        taken[#taken + 1] = id
        taken[#taken + 1] = due[i + 1]
        taken[#taken + 1] = payload
        taken[#taken + 1] = try
        taken[#taken + 1] = abort
        taken[#taken + 1] = err
        room = room - 1
    end
end
return {waiting, taken}
"""
_CLAIMED_FIELDS = 6  # a claimed job in the script's reply: id, score, then its first read
_SERVICES = "gcal_services"
_STAGED = "gcal_staged"


def services(ctx: dict[str, Any]) -> Services:
    """The one typed door to arq's ``ctx``."""
    found = ctx.get(_SERVICES)
    if not isinstance(found, Services):
        raise TypeError("worker context holds no Services (on_startup did not run)")
    return found


def set_services(ctx: dict[str, Any], value: Services) -> None:
    ctx[_SERVICES] = value


def stage_finish(ctx: dict[str, Any], job_id: str, writes: Callable[[Pipeline], None]) -> None:
    """Have ``writes`` run in the transaction that finishes the job ``job_id`` in arq."""
    staged = ctx.get(_STAGED)
    if not isinstance(staged, dict):
        raise TypeError("worker context holds no staging (not a GcalWorker)")
    staged[job_id] = writes


def _enqueue_ms(score: bytes) -> int:
    """arq's enqueue time (ms) of a claimed job: its score in the queue, which a producer may
    have set to any float (``-inf`` included, which ``int()`` refuses)."""
    try:
        return int(float(score))
    except (ValueError, OverflowError):
        return timestamp_ms()


def _failure_reason(result_data: bytes | None) -> tuple[str, str]:
    """The job name and arq's reason from arq's record of a failed job."""
    name, reason = UNKNOWN_JOB, "the job could not be run"
    try:
        failed = wire.loads(result_data) if result_data else {}
        named = failed.get("f")
        if isinstance(named, str) and wire.JOB_NAME_RE.fullmatch(named):
            name = named
        cause = failed.get("r")
        if isinstance(cause, dict) and isinstance(cause.get("message"), str):
            reason = cause["message"]
    except (ValueError, AttributeError):
        pass
    return name, reason


def _error_for(name: str, reason: str) -> GcalError:
    if reason == "job expired":
        return InvalidRequest(
            "the job's payload was not found: it expired before a worker reached it, or was "
            "never written (arq:job:<id> must be set before the id is queued)"
        )
    if name == UNKNOWN_JOB:
        return InvalidRequest(
            "the job payload is not a JSON job object with 'f', 'a', 'k' and 'et' "
            "(pickle is never accepted; see docs/contract.md)"
        )
    if name not in JOBS:
        return InvalidRequest(f"unknown job name {name!r}")
    if "retries exceeded" in reason:
        return InternalError("the job's tries were used up by workers that stopped during it")
    return InternalError("the job failed before it could run")


class GcalWorker(Worker):
    """arq's worker with guards against anything a producer can put in Redis, that reads the
    queue when woken (:mod:`worker.wake`) rather than on a fixed poll."""

    def __init__(
        self, *args: Any, reports: JobReports, wake_channel: str, idle_poll: float, **kwargs: Any
    ) -> None:
        # arq's own poll loop sleeps between reads; ours waits in _poll_iteration instead.
        super().__init__(*args, poll_delay=0, **kwargs)
        self.reports = reports
        self._wake_channel = wake_channel
        self._idle_poll = idle_poll
        self._waker: Waker | None = None
        self._backlog = False  # the last read left jobs no slot was free for
        self._claim: AsyncScript | None = None
        # job id -> the result writes (jobs.results.stage) to fold into arq's finishing
        # transaction for it (run_job stages them; finish_job runs them with arq's own).
        self.staged: dict[str, Callable[[Pipeline], None]] = {}
        self.ctx[_STAGED] = self.staged

    async def main(self) -> None:
        if self._pool is None:
            # arq's own, tuned (worker.redis_pool), answering run_job's first read from the
            # claim (worker.first_read)
            self._pool = FirstReadPool.sharing(await tuned_arq_pool(self))
        await super().main()

    async def _poll_iteration(self) -> None:
        """arq's poll iteration (arq 0.28, pinned), with its read of the queue and start_jobs
        replaced by one claim script, then a wait for the next wake."""
        if self._waker is None:
            self._waker = Waker(self.pool, self._wake_channel, longest=self._idle_poll)
            self._waker.start()
            self._claim = self.pool.register_script(_CLAIM)
        room = self.max_jobs - self.job_counter
        if self.burst and self.max_burst_jobs >= 0:
            burst_jobs_remaining = self.max_burst_jobs - self._jobs_started()
            if burst_jobs_remaining < 1:
                return
            room = min(room, burst_jobs_remaining)
        if self.allow_pick_jobs and room > 0:
            await self._claim_due(room)
        if self.allow_abort_jobs:
            await self._cancel_aborted_jobs()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # as arq: an error in run_job's bookkeeping surfaces here
        await self.heart_beat()
        await self._waker.wait()

    def wake(self) -> None:
        """End the current wait for a wake: the loop reads the queue (and checks whether a
        burst is over) now."""
        if self._waker is not None:
            self._waker.set()

    def _release_sem_dec_counter_on_complete(self) -> None:
        # arq's done callback of every job task (private in arq 0.28, pinned): a freed slot
        # takes the next waiting job at once rather than at the next poll.
        super()._release_sem_dec_counter_on_complete()
        if self._backlog:
            self.wake()

    async def close(self) -> None:
        if self._waker is not None:
            await self._waker.stop()
        await super().close()

    @property
    def _services(self) -> Services:
        return services(self.ctx)

    async def _claim_due(self, room: int) -> None:
        """Claim up to ``room`` due jobs and start them. arq claims each job with WATCH,
        EXISTS, ZSCORE, then MULTI/PSETEX (three round trips a job) after reading
        ``queue_read_limit`` ids; one script does both, atomically."""
        assert self._claim is not None  # noqa: S101 - registered by the first poll
        waiting, claimed = await self._claim(
            keys=[self.queue_name],
            args=[
                in_progress_key_prefix,
                timestamp_ms(),
                int(self.in_progress_timeout_s * 1000),
                room,
                self.queue_read_limit,
                job_key_prefix,
                retry_key_prefix,
                abort_jobs_ss if self.allow_abort_jobs else "",
                TRY_COUNT_EXPIRY_S,
            ],
        )
        # The rest wait for a freed slot (which then wakes this worker).
        self._backlog = bool(waiting)
        refused = False
        for at in range(0, len(claimed), _CLAIMED_FIELDS):
            raw, score, payload, job_try, aborted, error = claimed[at : at + _CLAIMED_FIELDS]
            job_id = await self._admit(raw)
            if job_id is None:
                refused = True
                continue
            read = FirstRead(
                job_id,
                payload or None,
                job_try,
                bool(aborted),
                error.decode(errors="replace"),
                with_abort=self.allow_abort_jobs,
            )
            await self.sem.acquire()
            self.job_counter += 1
            task = self.loop.create_task(
                self.run_job(job_id, _enqueue_ms(score)), context=handed(read)
            )
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task
        if refused and self._backlog:
            # Refused ids took room that no job will free: read again at once.
            self.wake()

    async def _admit(self, raw: bytes) -> str | None:
        """The job id of a claimed queue member, or None when it was refused (answered, or
        dead-lettered when no result key can be named for it)."""
        try:
            job_id = raw.decode("utf-8")
        except UnicodeDecodeError:
            await self._dead_letter(raw, "the job id is not UTF-8")
            return None
        if not JOB_ID_RE.fullmatch(job_id):
            await self._refuse(raw, job_id, f"a job id must be {JOB_ID_RULE}")
            return None
        return job_id

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        except Exception as err:
            # Anything arq's own handling of a job raises would stop the whole worker.
            log.exception("job %s: arq could not handle it", job_id)
            error: GcalError = InternalError("the worker could not handle this job")
            if isinstance(err, ResponseError) and "WRONGTYPE" in str(err):
                error = InvalidRequest("the job's arq keys do not hold what arq writes there")
            await self._answer(job_id, UNKNOWN_JOB, error)
            await super().finish_failed_job(job_id, None)

    async def finish_job(  # noqa: PLR0917 - arq's signature
        self,
        job_id: str,
        finish: bool,
        result_data: bytes | None,
        result_timeout_s: float | None,
        keep_result_forever: bool,
        incr_score: int | None,
        keep_in_progress: float | None,
    ) -> None:
        """arq's bookkeeping of a finished (or deferred) job, in one transaction with the
        job's result and its announcement when the job staged them: a job ends with its
        result written and its queue entry gone together, never one without the other."""
        stage = self.staged.pop(job_id, None)
        if stage is None:
            await super().finish_job(
                job_id,
                finish,
                result_data,
                result_timeout_s,
                keep_result_forever,
                incr_score,
                keep_in_progress,
            )
            return
        async with self.pool.pipeline(transaction=True) as tr:
            stage(tr)
            # The result is encoded on ``tr`` now; what it was made from (a page of events)
            # is not kept while Redis answers, which can take long under load.
            del stage
            delete_keys = [in_progress_key_prefix + job_id] if keep_in_progress is None else []
            if keep_in_progress is not None:
                tr.pexpire(in_progress_key_prefix + job_id, int(keep_in_progress * 1000))
            if finish:
                if result_data:
                    expire = None if keep_result_forever else result_timeout_s
                    px = int(expire * 1000) if expire is not None else None
                    tr.set(result_key_prefix + job_id, result_data, px=px)
                delete_keys += [retry_key_prefix + job_id, job_key_prefix + job_id]
                tr.zrem(abort_jobs_ss, job_id)
                tr.zrem(self.queue_name, job_id)
            elif incr_score:
                tr.zincrby(self.queue_name, incr_score, job_id)
            if delete_keys:
                tr.delete(*delete_keys)
            await tr.execute()

    async def finish_failed_job(self, job_id: str, result_data: bytes | None) -> None:
        """Jobs that fail before any job function runs still get a typed result."""
        await super().finish_failed_job(job_id, result_data)
        name, reason = _failure_reason(result_data)
        error = _error_for(name, reason)
        if isinstance(error, InternalError):
            log.error(
                "job %s (%s) could not run: %s",
                job_id,
                name,
                reason,
                extra={"job_id": job_id, "job": name},
            )
        await self._answer(job_id, name, error)

    async def _answer(self, job_id: str, name: str, error: GcalError) -> None:
        s = self._services
        result = JobResult.failure(job_id, name, JobError.from_error(error))
        await record(s.redis, s.keys, result, s.notifier)
        self.reports.finished(result, attempt=None, seconds=None)

    async def _refuse(self, raw: bytes, job_id: str, reason: str) -> None:
        """Take a job with a nameable but invalid id off the queue and answer it."""
        if await self._take_off_queue(raw):
            log.warning("job refused: %s", reason)
            await self._answer(job_id, UNKNOWN_JOB, InvalidRequest(reason))

    async def _dead_letter(self, raw: bytes, reason: str) -> None:
        """Take a queue member no result can be written for off the queue, and record it."""
        if not await self._take_off_queue(raw):
            return
        keys: RedisKeys = self._services.keys
        fields: dict[Any, Any] = {
            "reason": reason,
            "job_id_hex": raw.hex()[:2048],
            "at": dt.datetime.now(dt.UTC).isoformat(),
        }
        await self.pool.xadd(
            keys.dead_letters, fields, maxlen=DEAD_LETTER_STREAM_MAXLEN, approximate=True
        )
        log.warning("job dead-lettered: %s", reason)

    async def _take_off_queue(self, raw: bytes) -> bool:
        """Remove ``raw`` from the queue with its arq keys; whether this worker removed it
        (several workers may see it; one answers)."""
        if not await self.pool.zrem(self.queue_name, raw):
            return False
        prefixes = (job_key_prefix, retry_key_prefix, in_progress_key_prefix)
        await self.pool.delete(*(prefix.encode() + raw for prefix in prefixes))
        return True
