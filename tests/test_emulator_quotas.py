"""Per-user and per-project request limits, and the per-account usage-limits switch."""

from __future__ import annotations

from typing import Any

import aiohttp

from emulator.config import QuotaConfig
from tests.conftest import MakeEmulator
from tests.harness import CALENDAR, CalendarApi, Emulator

OTHER_CLIENT = "other-client.apps.googleusercontent.com"


async def _call(
    emu: Emulator, access: str, method: str = "GET", body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        return await CalendarApi(http, emu, access).call(
            method, "/calendars/primary/events", body=body
        )


def _reason(body: Any) -> str:
    return str(body["error"]["errors"][0]["reason"])


async def test_per_user_limit_is_403_user_rate_limit(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(quotas=QuotaConfig(per_user_per_minute=3))
    alice, _ = emu.grant("alice@example.com", (CALENDAR,))
    bob, _ = emu.grant("bob@example.com", (CALENDAR,))
    statuses = [(await _call(emu, alice))[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    status, body = await _call(emu, alice)
    assert status == 403
    assert _reason(body) == "userRateLimitExceeded"
    assert body["error"]["errors"][0]["domain"] == "usageLimits"
    # Another user of the same project has a window of their own.
    status, _ = await _call(emu, bob)
    assert status == 200


async def test_per_project_limit_is_403_rate_limit(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(quotas=QuotaConfig(per_project_per_minute=3))
    users = [emu.grant(f"user{i}@example.com", (CALENDAR,))[0] for i in range(4)]
    statuses = [(await _call(emu, access))[0] for access in users[:3]]
    assert statuses == [200, 200, 200]
    status, body = await _call(emu, users[3])
    assert status == 403
    assert _reason(body) == "rateLimitExceeded"
    # Another project (OAuth client) is counted apart.
    other, _ = emu.grant("user0@example.com", (CALENDAR,), client_id=OTHER_CLIENT)
    status, _ = await _call(emu, other)
    assert status == 200


async def test_limits_can_answer_429(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(quotas=QuotaConfig(per_user_per_minute=1, exceeded_status=429))
    access, _ = emu.grant(scopes=(CALENDAR,))
    await _call(emu, access)
    status, body = await _call(emu, access)
    assert status == 429
    assert _reason(body) == "rateLimitExceeded"


async def test_the_window_slides_with_the_clock(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(quotas=QuotaConfig(per_user_per_minute=2))
    access, _ = emu.grant(scopes=(CALENDAR,))
    await _call(emu, access)
    emu.store.clock.advance(30)
    await _call(emu, access)
    assert (await _call(emu, access))[0] == 403
    emu.store.clock.advance(31)  # the first request left the window; the second has not
    assert (await _call(emu, access))[0] == 200
    assert (await _call(emu, access))[0] == 403
    emu.store.clock.advance(61)
    assert (await _call(emu, access))[0] == 200
    assert emu.quotas.refused == 2


async def test_limits_are_set_through_the_control_api(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    async with aiohttp.ClientSession() as http:
        async with http.put(
            f"{emulator.url}/_emulator/quotas",
            json={"per_user_per_minute": 1, "exceeded_status": 429},
        ) as resp:
            assert resp.status == 200
        async with http.put(
            f"{emulator.url}/_emulator/quotas", json={"exceeded_status": 418}
        ) as resp:
            assert resp.status == 400
    assert (await _call(emulator, access))[0] == 200
    assert (await _call(emulator, access))[0] == 429


_EVENT = {
    "summary": "Blocked?",
    "start": {"dateTime": "2026-03-02T10:00:00Z"},
    "end": {"dateTime": "2026-03-02T11:00:00Z"},
}


async def test_quota_exceeded_switch_blocks_writes(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emulator.url}/_emulator/accounts/alice@example.com/quota-exceeded",
            json={"enabled": True},
        ) as resp,
    ):
        assert resp.status == 200
    status, body = await _call(emulator, access, "POST", _EVENT)
    assert status == 403
    assert _reason(body) == "quotaExceeded"
    assert body["error"]["message"] == "Calendar usage limits exceeded."
    assert (await _call(emulator, access))[0] == 200

    emulator.store.accounts["alice@example.com"].quota_exceeded = False
    assert (await _call(emulator, access, "POST", _EVENT))[0] == 200


async def test_quota_exceeded_switch_can_block_reads_too(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(quota_exceeded_writes_only=False)
    access, _ = emu.grant(scopes=(CALENDAR,))
    emu.store.accounts["alice@example.com"].quota_exceeded = True
    status, body = await _call(emu, access)
    assert status == 403
    assert _reason(body) == "quotaExceeded"
