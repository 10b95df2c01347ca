"""The auth_web application factory: routes plus the services they share.

    app = create_app(settings)              # opens Redis and an HTTP session on startup
    app = create_app(settings, redis=r)     # tests hand in their own Redis client

The services (:mod:`gcal.services`) are opened and closed by ``app.cleanup_ctx`` and reached
through ``deps(request)``. Unset scopes become the jobs' own here
(:func:`jobs.registry.resolved`). An exception no handler expected becomes a friendly 500
(:mod:`auth_web.errors`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import Redis

from auth_web import health, linking, request_metrics, webhooks
from auth_web.deps import DEPS, Deps
from auth_web.errors import unexpected_errors
from auth_web.metrics import Metrics
from gcal.services import open_services
from gcal.settings import Settings
from jobs.registry import resolved


def create_app(settings: Settings, *, redis: Redis | None = None) -> web.Application:
    settings = resolved(settings)
    # Outermost first: a request the error middleware turns into a page is still measured.
    app = web.Application(
        middlewares=[
            request_metrics.middleware,
            unexpected_errors(browser_routes=linking.BROWSER_ROUTES),
        ]
    )
    app.add_routes(linking.routes)
    app.add_routes(health.routes)
    app.add_routes(webhooks.routes)

    async def services(app: web.Application) -> AsyncIterator[None]:
        async with open_services(settings, redis=redis) as opened:
            app[DEPS] = Deps(services=opened, metrics=Metrics())
            yield

    app.cleanup_ctx.append(services)
    return app
