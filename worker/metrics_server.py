"""The worker's ``/metrics`` endpoint: a small aiohttp server in the worker's own event loop,
started by ``on_startup`` and stopped by ``on_shutdown`` (:mod:`worker.factory`).

    async with serve_metrics(metrics, redis, queue, host="127.0.0.1", port=8081):
        ...   # GET http://127.0.0.1:8081/metrics

``GCAL_WORKER_METRICS_PORT=0`` serves nothing. Each scrape reads the queue from Redis
(asynchronously) and renders the registry; nothing blocks the loop that runs the jobs. A port
that is taken stops the worker at start-up with an error naming the setting: several worker
processes on one host need a port each, or the setting at 0.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from redis.asyncio import Redis

from worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)


class MetricsPortError(RuntimeError):
    """The metrics port could not be bound."""


def metrics_app(metrics: WorkerMetrics, redis: Redis, queue: str) -> web.Application:
    async def scrape(request: web.Request) -> web.Response:
        await metrics.sample_queue(redis, queue)
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    return app


@contextlib.asynccontextmanager
async def serve_metrics(
    metrics: WorkerMetrics, redis: Redis, queue: str, *, host: str, port: int
) -> AsyncIterator[int | None]:
    """Serve ``/metrics`` on ``host:port`` while inside; yields the bound port (None: off)."""
    if port == 0:
        yield None
        return
    runner = web.AppRunner(metrics_app(metrics, redis, queue), access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as err:
            raise MetricsPortError(
                f"GCAL_WORKER_METRICS_PORT: cannot listen on {host}:{port} ({err.strerror}); "
                "give each worker on this host its own port, or 0 to turn metrics off"
            ) from None
        log.info("metrics served on http://%s:%s/metrics", host, port)
        yield port
    finally:
        await runner.cleanup()
