"""The emulator's shared pipeline: auth, scope checks, error envelope, faults."""

from __future__ import annotations

import aiohttp

from emulator.faults import FaultRule
from tests.harness import Emulator


async def test_calendar_without_token_is_401_with_google_envelope(emulator: Emulator) -> None:
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{emulator.calendar_base}users/me/calendarList")
        body = await resp.json()
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert body["error"]["code"] == 401
    assert body["error"]["errors"][0]["reason"] == "authError"


async def test_unknown_calendar_path_is_404(emulator: Emulator) -> None:
    access, _ = emulator.grant()
    async with aiohttp.ClientSession() as http:
        resp = await http.get(
            f"{emulator.calendar_base}no/such/thing", headers={"Authorization": f"Bearer {access}"}
        )
        body = await resp.json()
    assert resp.status == 404
    assert body["error"]["errors"][0]["reason"] == "notFound"


async def test_injected_error_answers_in_google_dialect_then_retires(emulator: Emulator) -> None:
    emulator.faults.add(
        FaultRule(endpoint="batch", error_rate=1.0, error_status=429, retry_after=7, count=1)
    )
    async with aiohttp.ClientSession() as http:
        first = await http.post(f"{emulator.url}/batch/calendar/v3")
        first_body = await first.json()
        second = await http.post(f"{emulator.url}/batch/calendar/v3")
    assert first.status == 429
    assert first.headers["Retry-After"] == "7"
    assert first_body["error"]["errors"][0]["reason"] == "rateLimitExceeded"
    assert second.status != 429


async def test_reset_fault_drops_the_connection(emulator: Emulator) -> None:
    emulator.faults.add(FaultRule(endpoint="batch", reset_rate=1.0, count=1))
    async with aiohttp.ClientSession() as http:
        try:
            await http.post(f"{emulator.url}/batch/calendar/v3")
        except aiohttp.ClientError:
            pass
        else:
            raise AssertionError("expected the connection to be dropped")
