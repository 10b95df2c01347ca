"""Counting and timing every request auth_web answers (``gcal_auth_http_*``, in
:mod:`auth_web.metrics`), as an aiohttp middleware.

Requests are labelled by the route's name (``auth_url``, ``auth_callback``, ``healthz``...),
never by the path: a path holds a user id, and unknown paths would make labels without end.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.typedefs import Handler

from auth_web.deps import deps

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _route(request: web.Request) -> str:
    route = request.match_info.route
    name = route.name if route.resource is not None else None
    return name or UNMATCHED


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500  # what aiohttp answers for an exception that is not an HTTP one
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as err:
        status = err.status
        raise
    finally:
        metrics = deps(request).metrics
        route = _route(request)
        method = request.method if request.method in _METHODS else "other"
        metrics.requests.labels(route, method, str(status)).inc()
        metrics.request_duration.labels(route).observe(time.perf_counter() - started)
