"""The webhook Google's push notifications arrive at: ``POST /webhooks/google/calendar``.

Google posts a bodiless request with ``X-Goog-*`` headers whenever a watched calendar changes
(google-api-facts §4.3). The request is checked (:meth:`gcal.push.PushChannels.receive`:
our channel, its token and resource id, a message number not seen before) and the calendar's
sync is made due now; a burst of notifications makes one sync. The answer comes in
milliseconds and never waits for the sync. A refused request gets a 4xx, which Google does not
retry; only a 5xx (Redis unreachable) is retried by Google.
"""

from __future__ import annotations

import logging

from aiohttp import web

from auth_web.deps import deps
from gcal.push import WebhookRefused

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

PATH = "/webhooks/google/calendar"


@routes.post(PATH, name="google_webhook")
async def google_calendar(request: web.Request) -> web.Response:
    d = deps(request)
    try:
        ping = await d.services.push.receive(request.headers)
    except WebhookRefused as refused:
        d.metrics.webhooks.labels(refused.kind).inc()
        log.info("webhook refused (%s): %s", refused.status, refused.reason)
        return web.Response(status=refused.status, text=refused.reason)
    if ping.changed:
        await d.services.schedule.request_now(ping.user_id, ping.calendar_id)
    d.metrics.webhooks.labels(ping.state).inc()
    return web.Response(status=200)
