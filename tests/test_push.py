"""Push channels and the webhook: only genuine, new messages of our live channels get through;
channels are renewed with overlap, stopped on disconnect, and refused after revocation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from emulator.state import Channel
from gcal.sync_schedule import SyncSchedule, member
from tests.conftest import MakeAuthWeb
from tests.harness import Emulator
from tests.pipeline import Pipeline, pipeline
from tests.services import AuthWeb

EMAIL = "alice@example.com"


@dataclass
class Setup:
    pipe: Pipeline
    auth_web: AuthWeb
    http: aiohttp.ClientSession

    @property
    def webhook(self) -> str:
        return f"{self.auth_web.url}/webhooks/google/calendar"

    def channel(self) -> Channel:
        [channel] = self.pipe.emulator.store.channels.values()
        return channel

    async def post(self, channel: Channel, number: int, **changes: str) -> int:
        """POST a notification as Google would for ``channel``; the status answered."""
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Token": channel.token or "",
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": channel.resource_uri,
            "X-Goog-Resource-State": "exists",
            "X-Goog-Message-Number": str(number),
            **changes,
        }
        async with self.http.post(self.webhook, headers=headers) as resp:
            return resp.status


@pytest.fixture
async def setup(emulator: Emulator, make_auth_web: MakeAuthWeb) -> AsyncIterator[Setup]:
    auth_web = await make_auth_web()
    webhook = f"{auth_web.url}/webhooks/google/calendar"
    async with (
        pipeline(
            emulator,
            auth_web.services.redis,
            auth_web.settings.redis_prefix,
            push_webhook_url=webhook,
        ) as pipe,
        aiohttp.ClientSession() as http,
    ):
        await pipe.link("u1")
        await pipe.start_worker()
        await SyncSchedule(pipe.redis, pipe.keys).add_calendars("u1", [EMAIL])
        assert (await pipe.run("sync_calendar", {"user_id": "u1", "calendar_id": EMAIL})).ok
        yield Setup(pipe, auth_web, http)


async def due_now(setup: Setup) -> bool:
    score = await setup.pipe.redis.zscore(setup.pipe.keys.sync_due, member("u1", EMAIL))
    return bool(score == 0)


async def test_a_genuine_new_message_makes_the_calendar_due_and_nothing_else_does(
    setup: Setup,
) -> None:
    channel = setup.channel()
    later = {member("u1", EMAIL): 10**15}  # not due: the next sync is far off
    await setup.pipe.redis.zadd(setup.pipe.keys.sync_due, later)
    assert channel.token  # ours, random; Redis holds only its hash
    record = await setup.pipe.redis.hgetall(  # type: ignore[misc]  # redis-py's union
        setup.pipe.keys.push_channel(channel.id)
    )
    assert channel.token.encode() not in b"".join(record.values())
    assert await setup.post(channel, 5, **{"X-Goog-Channel-Token": "forged"}) == 403
    assert await setup.post(channel, 5, **{"X-Goog-Resource-ID": "other-resource"}) == 403
    assert await setup.post(channel, 5, **{"X-Goog-Channel-ID": "0" * 32}) == 404
    assert await setup.post(channel, 5, **{"X-Goog-Message-Number": "five"}) == 400
    assert not await due_now(setup)  # none of those touched the schedule
    assert await setup.post(channel, 5) == 200
    assert await due_now(setup)
    assert await setup.post(channel, 5) == 409  # a replay
    assert await setup.post(channel, 4) == 409  # an older message
    assert await setup.post(channel, 6) == 200


async def test_a_channel_is_renewed_before_expiry_with_overlap(
    setup: Setup, emulator: Emulator
) -> None:
    old = setup.channel()
    settings = setup.pipe.settings
    await setup.pipe.stop()  # only the renewing worker below takes the next sync
    async with pipeline(
        emulator,
        setup.pipe.redis,
        settings.redis_prefix,
        push_webhook_url=settings.push_webhook_url,
        # The first pipeline's worker serves the same queue: it must read these tokens too.
        token_keys=settings.token_keys,
        # Every channel is "about to expire": the next sync renews it.
        push_renew_before_seconds=settings.push_channel_ttl_seconds + 60,
    ) as again:
        await again.link("u1")
        await again.start_worker()
        assert (await again.run("sync_calendar", {"user_id": "u1", "calendar_id": EMAIL})).ok
    new = setup.channel()  # the old one was stopped at Google once the new one was open
    assert new.id != old.id
    assert await setup.post(old, 10) == 404  # and is forgotten here
    assert await setup.post(new, 2) == 200


async def test_disconnect_stops_the_channels_at_google(setup: Setup) -> None:
    channel = setup.channel()
    assert (await setup.pipe.run("disconnect", {"user_id": "u1"})).ok
    assert setup.pipe.emulator.store.channels == {}
    assert await setup.post(channel, 2) == 404
    assert await setup.pipe.redis.zscore(setup.pipe.keys.sync_due, member("u1", EMAIL)) is None


async def test_after_google_revoked_the_grant_its_channels_are_refused(setup: Setup) -> None:
    channel = setup.channel()
    setup.pipe.emulator.store.revoke_grant(EMAIL)  # the next call meets a 401, then the refusal
    result = await setup.pipe.run("sync_calendar", {"user_id": "u1", "calendar_id": EMAIL})
    assert result.error is not None
    assert result.error.code == "auth_revoked"
    assert await setup.post(channel, 2) == 404  # Google may still post; we no longer listen
    assert await setup.pipe.redis.zscore(setup.pipe.keys.sync_due, member("u1", EMAIL)) is None
