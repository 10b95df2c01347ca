"""Placeholder."""

from aiohttp import web


async def handle(request: web.Request) -> web.Response:
    """Placeholder."""
    return web.Response(status=501)
