"""The last resort for auth_web: an exception no handler expected becomes the product's own
answer, never aiohttp's stock 500 page, and is logged with its cause.

    app = web.Application(middlewares=[unexpected_errors(browser_routes={"auth_callback"})])

A person's browser (the routes named in ``browser_routes``) gets the friendly HTML page; a
calling service or a probe gets the JSON error shape of ``/auth/url``. aiohttp's own HTTP
exceptions (redirects, 404, 405) pass through untouched. The log line names the route, not
the URL: a callback URL carries the state and the authorization code.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from auth_web.pages import page

log = logging.getLogger(__name__)


def unexpected_errors(*, browser_routes: Collection[str]) -> Middleware:
    """The middleware turning unexpected exceptions into a 500 the user can read."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            route = request.match_info.route.name or "unknown route"
            log.exception("unexpected error in %s %s", request.method, route)
            if route in browser_routes:
                return page(
                    500,
                    "Something went wrong",
                    "This service could not finish linking your Google account.",
                    "Nothing was changed. Please start again from the app in a minute.",
                )
            return web.json_response(
                {"error": {"code": "internal", "message": "an unexpected error occurred"}},
                status=500,
                headers={"Cache-Control": "no-store"},
            )

    return middleware
