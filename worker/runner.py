"""Running one job: validate the JSON arguments, call the job function, and always end with a
typed result at the job's result key (then its notification), or a deferral.

The retry policy across time lives here, and only here (in-call retries of transport errors
and 5xx live in the Google clients). Both layers spend from one budget per job
(:mod:`gcal.retry_budget`, ``GCAL_JOB_RETRY_BUDGET``), so they never multiply:

* arguments that do not validate -> ``invalid_request`` naming the fields; never retried;
* ``RateLimited`` (Google 403/429 rate limits, or our own limiter) and ``UpstreamUnavailable``
  (after the in-call retries) -> the job is deferred with ``arq.Retry(defer=...)``, jittered
  exponential backoff honouring ``retry_after``, so no worker slot sleeps; when the tries
  (``GCAL_JOB_MAX_TRIES``) or the retry budget run out, the error becomes the result;
* ``QuotaExhausted`` (Google's per-user usage limits) -> opens the user's breaker, result
  ``quota_exhausted`` with ``retry_after``; later jobs for the user fail fast until it closes;
* any other :class:`GcalError` -> its code as the result;
* anything else is a bug: logged with its traceback, result ``internal``, the worker goes on.

Every ``internal`` result has its cause in the log, under the job's id; every ending and every
deferral is reported once (:mod:`worker.reports`: a log line and the job metrics).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from typing import Any

from arq import Retry
from pydantic import BaseModel, ValidationError
from redis.asyncio.client import Pipeline

from gcal.errors import (
    GcalError,
    InternalError,
    InvalidRequest,
    QuotaExhausted,
    Throttled,
    UpstreamUnavailable,
)
from gcal.retry_budget import RetryBudget
from gcal.services import Services
from jobs import wire
from jobs.results import FieldError, JobError, JobResult, stage
from jobs.spec import JobRun, JobSpec
from worker.arq_worker import services, stage_finish
from worker.reports import JobReports

log = logging.getLogger(__name__)

# A deferred job runs again within hours at most (retry_max_seconds x job_max_tries).
_SPENT_TTL_SECONDS = 24 * 3600


def field_errors(err: ValidationError) -> list[FieldError]:
    """Readable, value-free descriptions of what is wrong with the arguments."""
    return [
        FieldError(
            field=".".join(str(part) for part in e["loc"]) or "(arguments)",
            message=e["msg"].removeprefix("Value error, "),
        )
        for e in err.errors(include_url=False, include_input=False)
    ]


def defer_seconds(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Jittered exponential backoff (50-150 % of ``base * 2**(attempt-1)``, capped), never
    sooner than Google's ``Retry-After``."""
    backoff = min(cap, base * 2.0 ** (attempt - 1)) * (0.5 + random.random())  # noqa: S311 - jitter
    return max(backoff, retry_after or 0.0)


async def run_job(
    ctx: dict[str, Any], spec: JobSpec[Any, Any], arguments: wire.Arguments, reports: JobReports
) -> dict[str, Any]:
    """arq's entry for every job. The result goes to our result key; arq's own record gets
    only a pointer to it, so a page of events is not encoded twice more nor kept twice."""
    started = time.perf_counter()
    s = services(ctx)
    info = JobRun(job_id=str(ctx["job_id"]), attempt=int(ctx["job_try"]))
    checked = _validated(spec, arguments, info)
    if isinstance(checked, JobResult):
        result = checked
    else:
        result = await _execute(s, spec, checked, info, reports=reports, started=started)
    ending = (
        None
        if spec.ended is None or isinstance(checked, JobResult)
        else functools.partial(spec.ended, s, checked, info, result)
    )

    def writes(pipe: Pipeline) -> None:
        stage(pipe, s.keys, result, s.notifier, quiet=spec.quiet)
        if ending is not None:
            try:
                ending(pipe)
            except Exception:
                log.exception("job %s (%s): its ending hook failed", info.job_id, spec.name)

    # Written with arq's own end of the job, in one transaction (GcalWorker.finish_job).
    stage_finish(ctx, info.job_id, writes)
    reports.finished(result, attempt=info.attempt, seconds=time.perf_counter() - started)
    return {"ok": result.ok, "result_key": s.keys.result(info.job_id)}


def _validated(
    spec: JobSpec[Any, Any], arguments: wire.Arguments, info: JobRun
) -> BaseModel | JobResult:
    """The job's argument model, or the failure result that ends the job."""
    if arguments.positional:
        error = InvalidRequest("job arguments must be passed by name (JSON object), not position")
        return JobResult.failure(info.job_id, spec.name, JobError.from_error(error))
    try:
        # JSON-mode validation: strict JSON types (no "10" for 10), RFC 3339 strings for times.
        parsed: BaseModel = spec.args.model_validate_json(wire.dumps(arguments.named))
    except ValidationError as err:
        error = InvalidRequest(f"invalid arguments for {spec.name}")
        return JobResult.failure(
            info.job_id, spec.name, JobError.from_error(error, field_errors(err))
        )
    except Exception:
        # A validator that raised something other than ValueError is a bug of ours.
        log.exception("job %s (%s): argument validation failed", info.job_id, spec.name)
        bug = InternalError("the worker could not check these arguments")
        return JobResult.failure(info.job_id, spec.name, JobError.from_error(bug))
    return parsed


async def _execute(
    s: Services,
    spec: JobSpec[Any, Any],
    args: BaseModel,
    info: JobRun,
    *,
    reports: JobReports,
    started: float,
) -> JobResult:
    settings = s.settings
    budget = RetryBudget(settings.job_retry_budget, await _spent(s, info))
    try:
        # Our own deadline, a second inside arq's, so a slow try still ends with a result.
        async with asyncio.timeout(max(settings.job_timeout - 1.0, 0.5)):
            with budget.applied():
                data = await spec.run(s, args, info)
        await _settle(s, info, budget)
        return JobResult.success(info.job_id, spec.name, data)
    except TimeoutError:
        error: GcalError = UpstreamUnavailable("the job ran out of time waiting for Google")
    except QuotaExhausted as err:
        error = err
        user_id = getattr(args, "user_id", None)
        if user_id and await s.limiter.breaker_remaining(user_id) is None:
            await s.limiter.open_breaker(user_id, settings.quota_breaker_seconds)
            error = QuotaExhausted(err.message, retry_after=settings.quota_breaker_seconds)
        return JobResult.failure(info.job_id, spec.name, JobError.from_error(error))
    except GcalError as err:
        error = err
        if error.code == InternalError.code:
            # The result says only "internal": the cause is for the operator, here.
            log.error(
                "job %s (%s) internal error: %s",
                info.job_id,
                spec.name,
                err.message,
                exc_info=err,
                extra={"job_id": info.job_id, "job": spec.name},
            )
    except Exception:
        log.exception(
            "job %s (%s) failed unexpectedly",
            info.job_id,
            spec.name,
            extra={"job_id": info.job_id, "job": spec.name},
        )
        error = InternalError("unexpected error in the worker; its log has the cause")
    # A deferral re-sends what Google refused: it spends from the budget, unless our own
    # limiter held the request back (then Google was not asked).
    if (
        error.retryable
        and info.attempt < settings.job_max_tries
        and (isinstance(error, Throttled) or budget.spend())
    ):
        await _carry(s, info, budget)
        delay = defer_seconds(
            info.attempt, settings.retry_base_seconds, settings.retry_max_seconds, error.retry_after
        )
        reports.deferred(
            info.job_id,
            spec.name,
            reason="throttled" if isinstance(error, Throttled) else error.code,
            delay=delay,
            attempt=info.attempt,
            seconds=time.perf_counter() - started,
        )
        raise Retry(defer=delay)
    await _settle(s, info, budget)
    return JobResult.failure(info.job_id, spec.name, JobError.from_error(error))


async def _spent(s: Services, info: JobRun) -> int:
    """What earlier tries of this job spent of its retry budget (a first try spent nothing)."""
    if info.attempt == 1:
        return 0
    raw = await s.redis.get(s.keys.retries_spent(info.job_id))
    return int(raw) if raw is not None else 0


async def _carry(s: Services, info: JobRun, budget: RetryBudget) -> None:
    """Keep what this try spent for the next one."""
    await s.redis.set(s.keys.retries_spent(info.job_id), budget.spent, ex=_SPENT_TTL_SECONDS)


async def _settle(s: Services, info: JobRun, budget: RetryBudget) -> None:
    """The job ends: forget its budget (there is only something to forget if it was spent)."""
    if budget.spent:
        await s.redis.delete(s.keys.retries_spent(info.job_id))
