"""The auth_web application factory: routes plus the services they share.

    app = create_app(settings)              # opens Redis and an HTTP session on startup
    app = create_app(settings, redis=r)     # tests hand in their own Redis client

The services (:mod:`gcal.services`) are opened and closed by ``app.cleanup_ctx`` and reached
through ``deps(request)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from auth_web import health, linking, request_metrics
from auth_web.deps import DEPS, Deps
from auth_web.metrics import Metrics
from gcal.services import open_services
from gcal.settings import Settings


def create_app(settings: Settings, *, redis: Redis | None = None) -> web.Application:
    app = web.Application(middlewares=[request_metrics.middleware])
    app.add_routes(linking.routes)
    app.add_routes(health.routes)

    async def services(app: web.Application) -> AsyncIterator[None]:
        async with open_services(settings, redis=redis) as opened:
            app[DEPS] = Deps(services=opened, metrics=Metrics())
            yield

    app.cleanup_ctx.append(services)
    return app
