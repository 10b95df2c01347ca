"""Push notifications: ``events.watch``, ``channels.stop`` and the webhook POSTs they promise.

A channel watches one calendar's events. Right after ``events.watch`` the emulator POSTs a
``sync`` message (number 1) to the channel's address; after every event change in that
calendar it POSTs ``exists`` (created or changed) or ``not_exists`` (cancelled), numbered on.
Messages carry only ``X-Goog-*`` headers and no body (google-api-facts §4.3).

Deliveries run as background tasks owned by the application (one ``aiohttp.ClientSession``
opened and closed by ``app.cleanup_ctx``), never inside the request that caused them. The
messages of one channel go out in order. A receiver answering 500/502/503/504, or not
answering, is retried ``config.push_retries`` times with doubling delays; each outcome is
recorded on the channel for the control API (``GET /_emulator/channels``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp import web

from emulator.api import ANY_CALENDAR, READ_EVENTS, ApiResponse, Call, Routes, json_response
from emulator.errors import bad_request, not_found, required
from emulator.keys import STORE
from emulator.state import Calendar, Channel, Delivery, Event, Store

log = logging.getLogger(__name__)

routes = Routes()

CHANNEL_ID_MAX = 64
_RETRYABLE = frozenset({500, 502, 503, 504})
# Google's notifications announce themselves with this agent [3P receivers log it].
_USER_AGENT = "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)"


# Methods -----------------------------------------------------------------------------------


@routes.post("/calendars/{calendarId}/events/watch", "events.watch", READ_EVENTS)
async def events_watch(call: Call) -> ApiResponse:
    calendar = call.calendar()
    body = call.json_body()
    store = call.store
    now_ms = int(store.clock.now() * 1000)
    channel = Channel(
        id=_channel_id(body, store),
        resource_id=_resource_id(calendar),
        owner=calendar.owner,
        calendar_id=calendar.id,
        address=_address(body, require_https=store.config.push_require_https),
        resource_uri=(
            f"{store.config.public_url}/calendar/v3/calendars/"
            f"{quote(call.params['calendarId'], safe='')}/events?alt=json"
        ),
        expiration_ms=_expiration(body, now_ms, store.config.channel_default_ttl_ms),
        token=_optional_str(body, "token"),
        client_id=call.token.client_id,
    )
    store.open_channel(channel)
    resource: dict[str, Any] = {
        "kind": "api#channel",
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "expiration": str(channel.expiration_ms),
    }
    if channel.token is not None:
        resource["token"] = channel.token
    return json_response(resource)


@routes.post("/channels/stop", "channels.stop", ANY_CALENDAR)
async def channels_stop(call: Call) -> ApiResponse:
    body = call.json_body()
    channel_id = _optional_str(body, "id")
    if not channel_id:
        raise required("id", "Required channel id.")
    channel = call.store.channels.get(channel_id)
    resource_id = _optional_str(body, "resourceId")
    # A channel can be stopped only by its own account, and only with its own resourceId;
    # anything else is "not found", as for a channel that never existed [I].
    if (
        channel is None
        or channel.owner != call.account.email
        or (resource_id is not None and resource_id != channel.resource_id)
    ):
        raise not_found()
    del call.store.channels[channel_id]
    return ApiResponse(status=204, body=b"")


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(f"Invalid value for {key}.", reason="invalid")
    return value


def _channel_id(body: dict[str, Any], store: Store) -> str:
    channel_id = _optional_str(body, "id")
    if not channel_id:
        raise required("id", "Required channel id.")
    if len(channel_id) > CHANNEL_ID_MAX:
        raise bad_request(f"Channel id must be at most {CHANNEL_ID_MAX} characters.")
    kind = body.get("type")
    if kind not in ("web_hook", "webhook"):
        raise bad_request("Invalid channel type; expected web_hook.", reason="invalid")
    # Channel ids must be unique (google-api-facts §4.3). Google answers a reused id with
    # 400 channelIdNotUnique [I]; the emulator does the same while the old channel lives.
    if channel_id in store.channels and not _expired(store.channels[channel_id], store):
        raise bad_request(f"Channel id {channel_id} not unique", reason="channelIdNotUnique")
    return channel_id


def _address(body: dict[str, Any], *, require_https: bool) -> str:
    address = _optional_str(body, "address")
    if not address:
        raise required("address", "Required address.")
    scheme = urlsplit(address).scheme
    if scheme not in ("http", "https") or (require_https and scheme != "https"):
        # Google's reason for a non-https address [I].
        raise bad_request(
            f"WebHook callback must be HTTPS: {address}", reason="push.webhookUrlNotHttps"
        )
    return address


def _expiration(body: dict[str, Any], now_ms: int, max_ttl_ms: int) -> int:
    """The channel's expiry (ms since the epoch): as asked, capped at Google's maximum."""
    raw = body.get("expiration")
    if raw is None:
        return now_ms + max_ttl_ms
    try:
        expiration = int(raw)
    except (TypeError, ValueError) as err:
        raise bad_request("Invalid value for expiration.", reason="invalid") from err
    if expiration <= now_ms:
        raise bad_request("Channel expiration must be in the future.", reason="invalid")
    # Asking for more than the maximum lifetime gets the maximum, as Google does [I].
    return min(expiration, now_ms + max_ttl_ms)


def _resource_id(calendar: Calendar) -> str:
    """An opaque id for the watched resource, stable for one calendar's events."""
    digest = hashlib.blake2b(f"{calendar.owner}/{calendar.id}".encode(), digest_size=15)
    return digest.hexdigest()[:27]


def _expired(channel: Channel, store: Store) -> bool:
    return channel.expiration_ms <= store.clock.now() * 1000


# Delivery ----------------------------------------------------------------------------------


class Pusher:
    """Turns store changes into webhook POSTs, run as tasks it owns."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.session: aiohttp.ClientSession | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        # Each channel's most recent delivery, which its next one waits for (keeps order).
        self._last: dict[str, asyncio.Task[None]] = {}

    async def drain(self) -> None:
        """Wait until every delivery started so far has finished (all its attempts)."""
        while self.tasks:
            await asyncio.wait(set(self.tasks))

    def on_channel(self, channel: Channel) -> None:
        self._notify(channel, "sync")

    def on_change(self, calendar: Calendar, event: Event) -> None:
        if not self.store.channels:
            return
        cancelled = event.cancelled and self.store.config.push_not_exists_on_delete
        state = "not_exists" if cancelled else "exists"
        for channel in list(self.store.channels.values()):
            if channel.calendar_id != calendar.id or channel.owner != calendar.owner:
                continue
            if _expired(channel, self.store):
                # Expired channels say nothing more and are forgotten.
                del self.store.channels[channel.id]
                continue
            self._notify(channel, state)

    def _notify(self, channel: Channel, state: str) -> None:
        channel.message_number += 1
        delivery = Delivery(channel.message_number, state)
        channel.deliveries.append(delivery)
        loop = self.loop
        if loop is None or loop.is_closed():
            return  # the application is not serving: nobody to deliver
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._spawn(channel, delivery)
        else:
            # A change made from another thread (a test poking the store directly).
            loop.call_soon_threadsafe(self._spawn, channel, delivery)

    def _spawn(self, channel: Channel, delivery: Delivery) -> None:
        previous = self._last.get(channel.id)
        task = asyncio.get_running_loop().create_task(self._deliver(channel, delivery, previous))
        self._last[channel.id] = task
        self.tasks.add(task)
        task.add_done_callback(lambda done: self._forget(channel.id, done))

    def _forget(self, channel_id: str, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if self._last.get(channel_id) is task:
            del self._last[channel_id]

    async def _deliver(
        self, channel: Channel, delivery: Delivery, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})  # order only; never cancels or re-raises it
        config = self.store.config
        delay = config.push_retry_delay
        headers = _headers(channel, delivery)
        for attempt in range(1 + max(config.push_retries, 0)):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            delivery.attempts += 1
            retryable = await self._post(channel.address, headers, delivery)
            if not retryable:
                break
        if delivery.status is not None and delivery.status < 300:
            channel.delivered += 1
        else:
            channel.failed += 1
            log.info(
                "push delivery failed channel=%s message=%s status=%s error=%s",
                channel.id,
                delivery.message_number,
                delivery.status,
                delivery.error,
            )

    async def _post(self, address: str, headers: dict[str, str], delivery: Delivery) -> bool:
        """POST one notification; True if it is worth another attempt."""
        if self.session is None:
            delivery.error = "emulator not serving"
            return False
        try:
            async with self.session.post(address, headers=headers, data=b"") as resp:
                await resp.read()
        except (aiohttp.ClientError, TimeoutError) as err:
            delivery.status = None
            delivery.error = f"{type(err).__name__}: {err}"
            return True
        delivery.status = resp.status
        delivery.error = None
        return resp.status in _RETRYABLE


# The application's pusher; tests reach it to await in-flight deliveries.
PUSHER = web.AppKey("push.pusher", Pusher)


def _headers(channel: Channel, delivery: Delivery) -> dict[str, str]:
    headers = {
        "X-Goog-Channel-ID": channel.id,
        "X-Goog-Channel-Expiration": formatdate(channel.expiration_ms / 1000, usegmt=True),
        "X-Goog-Resource-ID": channel.resource_id,
        "X-Goog-Resource-URI": channel.resource_uri,
        "X-Goog-Resource-State": delivery.state,
        "X-Goog-Message-Number": str(delivery.message_number),
        "User-Agent": _USER_AGENT,
    }
    if channel.token is not None:
        headers["X-Goog-Channel-Token"] = channel.token
    return headers


def setup(app: web.Application) -> None:
    """Listen for channel and event changes; own the delivery session and tasks."""
    store = app[STORE]
    pusher = Pusher(store)
    app[PUSHER] = pusher
    store.listeners.append(pusher.on_change)
    store.channel_listeners.append(pusher.on_channel)
    app.cleanup_ctx.append(_lifecycle)


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    pusher = app[PUSHER]
    timeout = aiohttp.ClientTimeout(total=app[STORE].config.push_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        pusher.session = session
        pusher.loop = asyncio.get_running_loop()
        yield
        pusher.loop = None
        tasks = list(pusher.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pusher.session = None
