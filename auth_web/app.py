"""The auth_web application factory: routes plus the resources they share.

    app = create_app(settings)              # opens Redis and an HTTP session on startup
    app = create_app(settings, redis=r)     # tests hand in their own Redis client

Resources are opened and closed by ``app.cleanup_ctx`` and reached through ``deps(request)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from auth_web import health, linking
from auth_web.deps import DEPS, Deps
from auth_web.metrics import Metrics
from gcal.crypto import cipher_for
from gcal.keys import RedisKeys
from gcal.notifications import Notifier
from gcal.oauth import OAuthClient
from gcal.settings import Settings
from gcal.tokens import TokenStore


def create_app(settings: Settings, *, redis: Redis | None = None) -> web.Application:
    app = web.Application()
    app.add_routes(linking.routes)
    app.add_routes(health.routes)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        client = redis if redis is not None else Redis.from_url(str(settings.redis_url))
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as http:
            keys = RedisKeys(settings.redis_prefix)
            oauth = OAuthClient(settings, http)
            notifier = Notifier(client, keys)
            cipher = cipher_for(settings)
            app[DEPS] = Deps(
                settings=settings,
                redis=client,
                http=http,
                keys=keys,
                cipher=cipher,
                oauth=oauth,
                tokens=TokenStore(
                    client, keys, cipher, oauth, notifier, refresh_margin=settings.refresh_margin
                ),
                notifier=notifier,
                metrics=Metrics(),
            )
            yield
        if redis is None:
            await client.aclose()

    app.cleanup_ctx.append(resources)
    return app
