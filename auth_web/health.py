"""Probes and metrics: ``/healthz`` (the process answers), ``/readyz`` (Redis answers),
``/metrics`` (Prometheus text format); and :func:`probe`, the client side of ``/healthz`` that
``python -m auth_web --check`` runs (a container's HEALTHCHECK: slim images have no curl)."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError
from yarl import URL

from auth_web.deps import deps
from gcal.settings import Settings

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

# Listening on every address: probe over loopback.
_ANY_ADDRESS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 - a lookup
# Seconds; a HEALTHCHECK's own timeout is longer, so a hung server reads as "unhealthy".
_PROBE_TIMEOUT = 3.0


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


async def probe(settings: Settings) -> bool:
    """Whether the auth_web that ``settings`` describe answers ``/healthz`` with 200."""
    host = _ANY_ADDRESS.get(settings.auth_web_host, settings.auth_web_host)
    url = URL.build(scheme="http", host=host, port=settings.auth_web_port, path="/healthz")
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_PROBE_TIMEOUT)) as http,
            http.get(url) as resp,
        ):
            return resp.status == 200
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        log.warning("health probe failed: %s %s", url, type(err).__name__)
        return False
