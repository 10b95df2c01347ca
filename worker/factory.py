"""Building the arq worker from the one :class:`Settings` object.

    worker = create_worker(settings)             # python -m worker
    worker = create_worker(settings, burst=True)  # tests: run until the queue is empty

Every job in :data:`jobs.registry.JOBS` is registered with a JSON (never pickle) serializer,
its timeout and max tries; ``on_startup`` opens the services (:mod:`gcal.services`: one pooled
HTTP session to Google, the accounts, the rate limiter...) on arq's Redis connection, and
``on_shutdown`` closes them. Unset scopes become the jobs' own (:func:`jobs.registry.resolved`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import os
import socket
from typing import Any

import uvloop
from arq.connections import RedisSettings
from arq.worker import Function, func

from gcal.keys import RedisKeys
from gcal.services import open_services
from gcal.settings import Settings
from jobs import wire
from jobs.registry import JOBS, resolved
from jobs.spec import JobSpec
from worker.arq_worker import GcalWorker, set_services
from worker.metrics import WorkerMetrics
from worker.metrics_server import serve_metrics
from worker.reports import JobReports
from worker.runner import run_job
from worker.scheduler import Scheduler

log = logging.getLogger(__name__)

HEALTH_CHECK_SECONDS = 5
_EXIT_STACK = "gcal_exit_stack"
# How long arq keeps its own job record (a pointer to our result key; see run_job).
ARQ_KEEP_RESULT_SECONDS = 300


def _entry(spec: JobSpec[Any, Any], reports: JobReports) -> Function:
    # arq passes what jobs.wire.loads_job made of the payload: one keyword, the arguments.
    async def run(ctx: dict[str, Any], *, arguments: wire.Arguments) -> dict[str, Any]:
        return await run_job(ctx, spec, arguments, reports)

    run.__qualname__ = run.__name__ = spec.name
    return func(run, name=spec.name)


def new_event_loop(settings: Settings) -> asyncio.AbstractEventLoop:
    """The loop a worker process runs on (``GCAL_WORKER_EVENT_LOOP``); set it as the current
    loop before :func:`create_worker`, which arq binds to the current loop."""
    if settings.worker_event_loop == "uvloop":
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def create_worker(
    settings: Settings,
    *,
    burst: bool = False,
    handle_signals: bool = True,
    metrics: WorkerMetrics | None = None,
) -> GcalWorker:
    """The worker; ``metrics`` (a fresh registry by default) counts its jobs and requests."""
    settings = resolved(settings)
    metrics = metrics or WorkerMetrics()
    reports = JobReports(metrics)

    async def on_startup(ctx: dict[str, Any]) -> None:
        stack = contextlib.AsyncExitStack()
        ctx[_EXIT_STACK] = stack
        opened = await stack.enter_async_context(
            open_services(settings, redis=ctx["redis"], observer=metrics)
        )
        set_services(ctx, opened)
        await stack.enter_async_context(
            serve_metrics(
                metrics,
                opened.redis,
                opened.keys.queue,
                host=settings.worker_metrics_host,
                port=settings.worker_metrics_port,
            )
        )
        if settings.sync_enabled:
            scheduler = Scheduler(opened.redis, opened.keys, settings)
            scheduler.start()
            stack.push_async_callback(scheduler.stop)
        # Everything built so far lives as long as the worker: keep it out of the collector's
        # scans (each collection of the young generation walks only what jobs allocate).
        gc.collect()
        gc.freeze()
        log.info(
            "worker ready: queue=%s jobs=%s loop=%s",
            opened.keys.queue,
            ",".join(JOBS),
            type(asyncio.get_running_loop()).__module__.partition(".")[0],  # uvloop, asyncio
        )

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        stack = ctx.pop(_EXIT_STACK, None)
        if stack is not None:
            await stack.aclose()

    options = worker_options(settings)
    return GcalWorker(
        functions=[_entry(spec, reports) for spec in JOBS.values()],
        reports=reports,
        wake_channel=RedisKeys(settings.redis_prefix).queue_wake,
        idle_poll=options.pop("poll_delay"),
        burst=burst,
        handle_signals=handle_signals,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        job_timeout=settings.job_timeout,
        max_tries=settings.job_max_tries,
        **options,
    )


def worker_options(settings: Settings) -> dict[str, Any]:
    """arq options every worker on these settings shares: queue, Redis, polling, draining,
    health key (one per worker process), JSON serialization (the benchmark's no-op baseline
    uses them too)."""
    keys = RedisKeys(settings.redis_prefix)
    return {
        "queue_name": keys.queue,
        "redis_settings": redis_settings(settings),
        "max_jobs": settings.worker_max_jobs,
        "poll_delay": settings.worker_poll_delay,
        "job_completion_wait": settings.worker_drain_seconds,
        "keep_result": ARQ_KEEP_RESULT_SECONDS,
        "health_check_interval": HEALTH_CHECK_SECONDS,
        "health_check_key": keys.worker_health(socket.gethostname(), os.getpid()),
        "job_serializer": wire.dumps_record,
        "job_deserializer": functools.partial(wire.loads_job, max_try=settings.job_max_tries),
        "log_results": False,  # results hold users' calendar data
    }


def redis_settings(settings: Settings) -> RedisSettings:
    return RedisSettings.from_dsn(str(settings.redis_url))
