"""Probes and metrics: ``/healthz`` (the process answers), ``/readyz`` (Redis answers),
``/metrics`` (Prometheus text format)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from redis.exceptions import RedisError

from auth_web.deps import deps

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/healthz", name="healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


@routes.get("/readyz", name="readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        await asyncio.wait_for(deps(request).services.redis.ping(), timeout=2)
    except (RedisError, OSError, TimeoutError) as err:
        log.warning("not ready: redis unreachable (%s)", type(err).__name__)
        return web.json_response({"ok": False, "redis": "unreachable"}, status=503)
    return web.json_response({"ok": True, "redis": "ok"})


@routes.get("/metrics", name="metrics")
async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=deps(request).metrics.render(), content_type="text/plain", charset="utf-8"
    )
