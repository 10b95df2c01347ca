"""Push notifications: events.watch, channels.stop and the webhook POSTs a channel receives."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDictProxy

from emulator.push import PUSHER
from tests.conftest import MakeEmulator
from tests.harness import CalendarApi, Emulator


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: every notification's headers land on ``received``."""

    url: str
    received: asyncio.Queue[CIMultiDictProxy[str]] = field(default_factory=asyncio.Queue)
    # Statuses to answer, in order; 200 once they run out.
    answers: list[int] = field(default_factory=list)

    async def next(self) -> CIMultiDictProxy[str]:
        return await asyncio.wait_for(self.received.get(), 5)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    holder: list[Receiver] = []

    async def hook(request: web.Request) -> web.Response:
        me = holder[0]
        assert await request.read() == b""
        me.received.put_nowait(request.headers)
        return web.Response(status=me.answers.pop(0) if me.answers else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    holder.append(Receiver(url=f"http://127.0.0.1:{runner.addresses[0][1]}/hook"))
    yield holder[0]
    await runner.cleanup()


async def _call(
    emu: Emulator, access: str, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        return await CalendarApi(http, emu, access).call(method, f"/{path}", body=body)


def _event(summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": "2026-03-02T10:00:00Z"},
        "end": {"dateTime": "2026-03-02T11:00:00Z"},
    }


async def test_watch_answers_a_channel_and_sends_sync_first(
    emulator: Emulator, receiver: Receiver
) -> None:
    access, _ = emulator.grant()
    status, channel = await _call(
        emulator,
        access,
        "POST",
        "calendars/primary/events/watch",
        {"id": "chan-1", "type": "web_hook", "address": receiver.url, "token": "t=1"},
    )
    assert status == 200
    assert channel["kind"] == "api#channel"
    assert channel["id"] == "chan-1"
    assert channel["token"] == "t=1"
    assert channel["resourceUri"] == (
        f"{emulator.url}/calendar/v3/calendars/primary/events?alt=json"
    )
    assert isinstance(channel["expiration"], str)
    assert int(channel["expiration"]) > emulator.store.clock.now() * 1000

    sync = await receiver.next()
    assert sync["X-Goog-Resource-State"] == "sync"
    assert sync["X-Goog-Message-Number"] == "1"
    assert sync["X-Goog-Channel-ID"] == "chan-1"
    assert sync["X-Goog-Channel-Token"] == "t=1"
    assert sync["X-Goog-Resource-ID"] == channel["resourceId"]
    assert sync["X-Goog-Resource-URI"] == channel["resourceUri"]
    expires = parsedate_to_datetime(sync["X-Goog-Channel-Expiration"])
    assert int(expires.timestamp()) == int(channel["expiration"]) // 1000


async def test_event_changes_notify_exists_then_not_exists(
    emulator: Emulator, receiver: Receiver
) -> None:
    access, _ = emulator.grant()
    await _call(
        emulator,
        access,
        "POST",
        "calendars/primary/events/watch",
        {"id": "chan-2", "type": "webhook", "address": receiver.url},
    )
    assert (await receiver.next())["X-Goog-Resource-State"] == "sync"

    status, event = await _call(
        emulator, access, "POST", "calendars/primary/events", _event("Standup")
    )
    assert status == 200
    created = await receiver.next()
    assert created["X-Goog-Resource-State"] == "exists"
    assert created["X-Goog-Message-Number"] == "2"
    assert "X-Goog-Channel-Token" not in created

    status, _ = await _call(emulator, access, "DELETE", f"calendars/primary/events/{event['id']}")
    assert status == 204
    deleted = await receiver.next()
    assert deleted["X-Goog-Resource-State"] == "not_exists"
    assert deleted["X-Goog-Message-Number"] == "3"


async def test_changes_in_other_calendars_are_not_announced(
    emulator: Emulator, receiver: Receiver
) -> None:
    alice, _ = emulator.grant("alice@example.com")
    bob, _ = emulator.grant("bob@example.com")
    await _call(
        emulator,
        alice,
        "POST",
        "calendars/primary/events/watch",
        {"id": "alice-chan", "type": "web_hook", "address": receiver.url},
    )
    await receiver.next()
    await _call(emulator, bob, "POST", "calendars/primary/events", _event("Bob's"))
    assert emulator.store.channels["alice-chan"].message_number == 1


async def test_stopped_channel_hears_nothing_more(emulator: Emulator, receiver: Receiver) -> None:
    access, _ = emulator.grant()
    _, channel = await _call(
        emulator,
        access,
        "POST",
        "calendars/primary/events/watch",
        {"id": "to-stop", "type": "web_hook", "address": receiver.url},
    )
    await receiver.next()
    stored = emulator.store.channels["to-stop"]

    status, body = await _call(
        emulator,
        access,
        "POST",
        "channels/stop",
        {"id": "to-stop", "resourceId": channel["resourceId"]},
    )
    assert (status, body) == (204, b"")
    await _call(emulator, access, "POST", "calendars/primary/events", _event("After stop"))
    assert "to-stop" not in emulator.store.channels
    assert stored.message_number == 1

    status, again = await _call(emulator, access, "POST", "channels/stop", {"id": "to-stop"})
    assert status == 404
    assert again["error"]["errors"][0]["reason"] == "notFound"


async def test_only_the_owner_can_stop_a_channel(emulator: Emulator, receiver: Receiver) -> None:
    alice, _ = emulator.grant("alice@example.com")
    mallory, _ = emulator.grant("mallory@example.com")
    _, channel = await _call(
        emulator,
        alice,
        "POST",
        "calendars/primary/events/watch",
        {"id": "alices", "type": "web_hook", "address": receiver.url},
    )
    status, _ = await _call(
        emulator,
        mallory,
        "POST",
        "channels/stop",
        {"id": "alices", "resourceId": channel["resourceId"]},
    )
    assert status == 404
    status, _ = await _call(
        emulator, alice, "POST", "channels/stop", {"id": "alices", "resourceId": "wrong"}
    )
    assert status == 404
    assert "alices" in emulator.store.channels


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"type": "web_hook", "address": "http://127.0.0.1:9/h"}, "required"),
        ({"id": "x" * 65, "type": "web_hook", "address": "http://127.0.0.1:9/h"}, "badRequest"),
        ({"id": "c", "type": "carrier_pigeon", "address": "http://127.0.0.1:9/h"}, "invalid"),
        ({"id": "c", "type": "web_hook"}, "required"),
        ({"id": "c", "type": "web_hook", "address": "ftp://x/"}, "push.webhookUrlNotHttps"),
        ({"id": "c", "type": "web_hook", "address": "http://x/", "expiration": "soon"}, "invalid"),
        ({"id": "c", "type": "web_hook", "address": "http://x/", "expiration": 1000}, "invalid"),
    ],
)
async def test_watch_rejects_bad_channels(
    emulator: Emulator, body: dict[str, Any], reason: str
) -> None:
    access, _ = emulator.grant()
    status, error = await _call(emulator, access, "POST", "calendars/primary/events/watch", body)
    assert status == 400
    assert error["error"]["errors"][0]["reason"] == reason
    assert not emulator.store.channels


async def test_reused_channel_id_is_refused(emulator: Emulator, receiver: Receiver) -> None:
    access, _ = emulator.grant()
    body = {"id": "same", "type": "web_hook", "address": receiver.url}
    first, _ = await _call(emulator, access, "POST", "calendars/primary/events/watch", body)
    second, error = await _call(emulator, access, "POST", "calendars/primary/events/watch", body)
    assert first == 200
    assert second == 400
    assert error["error"]["errors"][0]["reason"] == "channelIdNotUnique"


async def test_https_can_be_required(make_emulator: MakeEmulator, receiver: Receiver) -> None:
    emu = await make_emulator(push_require_https=True)
    access, _ = emu.grant()
    body = {"id": "c", "type": "web_hook", "address": receiver.url}
    status, error = await _call(emu, access, "POST", "calendars/primary/events/watch", body)
    assert status == 400
    assert error["error"]["errors"][0]["reason"] == "push.webhookUrlNotHttps"


async def test_expiration_is_capped_and_honoured(emulator: Emulator, receiver: Receiver) -> None:
    access, _ = emulator.grant()
    now_ms = int(emulator.store.clock.now() * 1000)
    _, capped = await _call(
        emulator,
        access,
        "POST",
        "calendars/primary/events/watch",
        {"id": "long", "type": "web_hook", "address": receiver.url, "expiration": 2**50},
    )
    assert int(capped["expiration"]) <= now_ms + emulator.store.config.channel_default_ttl_ms + 5000
    _, short = await _call(
        emulator,
        access,
        "POST",
        "calendars/primary/events/watch",
        {
            "id": "short",
            "type": "web_hook",
            "address": receiver.url,
            "expiration": str(now_ms + 60_000),
        },
    )
    assert short["expiration"] == str(now_ms + 60_000)
    await receiver.next()
    await receiver.next()
    expired = emulator.store.channels["short"]

    emulator.store.clock.advance(120)
    await _call(emulator, access, "POST", "calendars/primary/events", _event("Late"))
    assert "short" not in emulator.store.channels
    assert expired.message_number == 1
    assert (await receiver.next())["X-Goog-Channel-ID"] == "long"


async def test_5xx_answers_are_retried_and_outcomes_recorded(
    make_emulator: MakeEmulator, receiver: Receiver
) -> None:
    emu = await make_emulator(push_retries=2, push_retry_delay=0.0)
    access, _ = emu.grant()
    receiver.answers = [503, 500]
    await _call(
        emu,
        access,
        "POST",
        "calendars/primary/events/watch",
        {"id": "flaky", "type": "web_hook", "address": receiver.url},
    )
    numbers = [(await receiver.next())["X-Goog-Message-Number"] for _ in range(3)]
    assert numbers == ["1", "1", "1"]
    await emu.app[PUSHER].drain()
    channel = emu.store.channels["flaky"]
    assert (channel.delivered, channel.failed) == (1, 0)
    assert channel.deliveries[-1].attempts == 3
    assert channel.deliveries[-1].status == 200


async def test_4xx_answers_are_not_retried(make_emulator: MakeEmulator, receiver: Receiver) -> None:
    emu = await make_emulator(push_retries=3, push_retry_delay=0.0)
    access, _ = emu.grant()
    receiver.answers = [404]
    await _call(
        emu,
        access,
        "POST",
        "calendars/primary/events/watch",
        {"id": "gone", "type": "web_hook", "address": receiver.url},
    )
    await receiver.next()
    await emu.app[PUSHER].drain()
    channel = emu.store.channels["gone"]
    assert (channel.delivered, channel.failed) == (0, 1)
    assert channel.deliveries[-1].attempts == 1
    assert channel.deliveries[-1].status == 404


async def test_unreachable_receiver_is_recorded_as_failed(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(push_retries=1, push_retry_delay=0.0)
    # A port that was just free: nobody listens on it.
    probe = web.AppRunner(web.Application())
    await probe.setup()
    site = web.TCPSite(probe, "127.0.0.1", 0)
    await site.start()
    port = probe.addresses[0][1]
    await probe.cleanup()

    access, _ = emu.grant()
    status, _ = await _call(
        emu,
        access,
        "POST",
        "calendars/primary/events/watch",
        {"id": "void", "type": "web_hook", "address": f"http://127.0.0.1:{port}/hook"},
    )
    assert status == 200  # the watch call never waits for the delivery
    await emu.app[PUSHER].drain()
    channel = emu.store.channels["void"]
    assert (channel.delivered, channel.failed) == (0, 1)
    delivery = channel.deliveries[-1]
    assert delivery.attempts == 2
    assert delivery.status is None
    assert delivery.error


async def test_watch_needs_a_read_scope(emulator: Emulator, receiver: Receiver) -> None:
    access, _ = emulator.grant(scopes=("https://www.googleapis.com/auth/calendar.calendarlist",))
    status, error = await _call(
        emulator,
        access,
        "POST",
        "calendars/primary/events/watch",
        {"id": "c", "type": "web_hook", "address": receiver.url},
    )
    assert status == 403
    assert error["error"]["errors"][0]["reason"] == "insufficientPermissions"


async def test_deletions_can_be_announced_as_exists(
    make_emulator: MakeEmulator, receiver: Receiver
) -> None:
    emu = await make_emulator(push_not_exists_on_delete=False)
    access, _ = emu.grant()
    _, event = await _call(emu, access, "POST", "calendars/primary/events", _event("Short-lived"))
    await _call(
        emu,
        access,
        "POST",
        "calendars/primary/events/watch",
        {"id": "coll", "type": "web_hook", "address": receiver.url},
    )
    assert (await receiver.next())["X-Goog-Resource-State"] == "sync"
    await _call(emu, access, "DELETE", f"calendars/primary/events/{event['id']}")
    assert (await receiver.next())["X-Goog-Resource-State"] == "exists"
