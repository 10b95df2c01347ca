"""The emulator's aiohttp application: Google's URL layout, fault injection, lifecycle.

URL layout, as Google's (each base is a setting of the product, so one emulator stands in
for all of Google's hosts):

* ``/o/oauth2/v2/auth`` (accounts.google.com), ``/token``, ``/revoke`` (oauth2.googleapis.com)
* ``/calendar/v3/...`` and ``/batch/calendar/v3`` (www.googleapis.com)
* ``/_emulator/...``: the control API for tests and benchmarks (never fault-injected)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from emulator import batch, calendars, control, events, oauth, push
from emulator.api import ApiRequest, Routes, dispatch, resolve_name
from emulator.config import EmulatorConfig
from emulator.errors import ApiError, OAuthError
from emulator.faults import FaultPlan, Faults
from emulator.keys import FAULTS, QUOTAS, ROUTES, STORE
from emulator.quotas import Quotas
from emulator.state import Store

log = logging.getLogger(__name__)

CALENDAR_PREFIX = "/calendar/v3"
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(config: EmulatorConfig, *, store: Store | None = None) -> web.Application:
    """Build the emulator for ``config`` (pass ``store`` to inspect state from a test)."""
    store = store or Store(config)
    routes = Routes()
    for module_routes in (calendars.routes, events.routes, push.routes):
        routes.extend(module_routes)

    app = web.Application(middlewares=[_faults_middleware], client_max_size=64 * 1024**2)
    app[STORE] = store
    app[QUOTAS] = Quotas(config.quotas, store.clock)
    app[FAULTS] = Faults()
    app[ROUTES] = routes

    oauth.setup(app)
    app.router.add_route("*", CALENDAR_PREFIX + "/{tail:.*}", _calendar, name="calendar")
    app.router.add_post("/batch/calendar/v3", batch.handle, name="batch")
    app.router.add_get("/_emulator/healthz", _healthz, name="control.healthz")
    control.setup(app)
    push.setup(app)
    return app


async def _healthz(request: web.Request) -> web.Response:
    """Readiness probe; also the benchmarks' baseline (the cheapest full HTTP round trip)."""
    return web.json_response({"ok": True})


async def _calendar(request: web.Request) -> web.Response:
    app = request.app
    api_request = ApiRequest(
        method=request.method,
        path=request.rel_url.raw_path[len(CALENDAR_PREFIX) :],
        query=request.query,
        headers=request.headers,
        body=await request.read(),
    )
    result = await dispatch(app[STORE], app[QUOTAS], app[ROUTES], api_request)
    response = web.Response(status=result.status, headers=result.headers)
    if result.body or result.status != 204:
        response.body = result.body
        response.headers["Content-Type"] = result.content_type
    return response


# Fault injection ---------------------------------------------------------------------------


def _endpoint(request: web.Request) -> str | None:
    """The fault-injection name of the endpoint ``request`` is for (None: never inject)."""
    path = request.path
    if path.startswith("/_emulator/"):
        return None
    if path.startswith(CALENDAR_PREFIX + "/"):
        api_request = ApiRequest(
            method=request.method,
            path=request.rel_url.raw_path[len(CALENDAR_PREFIX) :],
            query=request.query,
            headers=request.headers,
        )
        return resolve_name(request.app[ROUTES], api_request) or "calendar"
    route = request.match_info.route
    return route.name


def fault_error(endpoint: str, plan: FaultPlan) -> tuple[int, bytes, dict[str, str]]:
    """Status, JSON body and headers of an injected error, in the endpoint's own dialect."""
    status = plan.error_status or 503
    headers = {"Content-Type": "application/json; charset=UTF-8"}
    if plan.retry_after is not None:
        headers["Retry-After"] = str(plan.retry_after)
    if endpoint.startswith("oauth."):
        error = "internal_failure" if status == 500 else "temporarily_unavailable"
        return status, OAuthError(status, error, "Injected failure.").body(), headers
    if status == 429:
        err = ApiError(429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits")
    elif status == 403:
        reason = plan.error_reason or "rateLimitExceeded"
        message = {
            "userRateLimitExceeded": "User Rate Limit Exceeded",
            "quotaExceeded": "Calendar usage limits exceeded.",
        }.get(reason, "Rate Limit Exceeded")
        err = ApiError(403, reason, message, domain="usageLimits")
    else:
        err = ApiError(status, "backendError", "Backend Error")
    return status, err.body(), headers


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


@web.middleware
async def _faults_middleware(request: web.Request, handler: _Handler) -> web.StreamResponse:
    endpoint = _endpoint(request)
    if endpoint is None:
        return await handler(request)
    hold = request.app[FAULTS].take_hold(endpoint)
    if hold is not None:
        await request.read()  # held once fully arrived, as latency is
        await hold.wait()
    plan = request.app[FAULTS].plan(endpoint)
    if not plan.any:
        return await handler(request)
    if plan.delay:
        # Latency models Google's processing time: the request has fully arrived first, so a
        # client that vanishes meanwhile still has its request carried out (a lost answer).
        await request.read()
        await asyncio.sleep(plan.delay)
    if plan.reset:
        _abort(request)
        raise web.HTTPServiceUnavailable  # never reaches the client: the socket is gone
    if plan.error_status:
        status, body, headers = fault_error(endpoint, plan)
        return web.Response(status=status, body=body, headers=headers)
    response = await handler(request)
    if not (plan.truncate or plan.malformed) or not isinstance(response, web.Response):
        return response
    body = bytes(response.body or b"") if isinstance(response.body, bytes | bytearray) else b""
    if plan.malformed:
        response.body = b"<html><body>Bad Gateway</body>" if not body else body[: len(body) // 2]
        return response
    # Truncate: promise the whole body, send half, then drop the connection.
    stream = web.StreamResponse(status=response.status, headers=response.headers)
    stream.content_length = len(body)
    await stream.prepare(request)
    await stream.write(body[: len(body) // 2])
    _abort(request)
    return stream
