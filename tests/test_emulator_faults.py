"""Fault injection as a client sees it: Google-dialect errors, broken connections and bodies.

Latency is exercised but never timed: assertions are on statuses and behaviour only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from emulator.faults import FaultRule
from tests.harness import CALENDAR, Emulator

LIST = "calendars/primary/events"


async def _add(emu: Emulator, *rules: dict[str, Any]) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emu.url}/_emulator/faults", json=list(rules)) as resp,
    ):
        assert resp.status == 200


async def _get(emu: Emulator, access: str, path: str = LIST) -> tuple[int, Any, dict[str, str]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{emu.calendar_base}{path}", headers={"Authorization": f"Bearer {access}"}
        ) as resp,
    ):
        return resp.status, await resp.json(), dict(resp.headers)


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_carry_backend_error(emulator: Emulator, status: int) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    await _add(emulator, {"endpoint": "events.list", "error_rate": 1.0, "error_status": status})
    got, body, _ = await _get(emulator, access)
    assert got == status
    assert body["error"]["code"] == status
    assert body["error"]["errors"][0]["reason"] == "backendError"


async def test_429_carries_retry_after(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    await _add(
        emulator,
        {"endpoint": "events.list", "error_rate": 1.0, "error_status": 429, "retry_after": 3},
    )
    status, body, headers = await _get(emulator, access)
    assert status == 429
    assert headers["Retry-After"] == "3"
    assert body["error"]["errors"][0] == {
        "domain": "usageLimits",
        "reason": "rateLimitExceeded",
        "message": "Rate Limit Exceeded",
    }


@pytest.mark.parametrize(
    ("reason", "expected"),
    [(None, "rateLimitExceeded"), ("userRateLimitExceeded", "userRateLimitExceeded")],
)
async def test_403_rate_limits(emulator: Emulator, reason: str | None, expected: str) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    await _add(
        emulator,
        {"endpoint": "events.list", "error_rate": 1.0, "error_status": 403, "error_reason": reason},
    )
    status, body, _ = await _get(emulator, access)
    assert status == 403
    assert body["error"]["errors"][0]["reason"] == expected
    assert body["error"]["errors"][0]["domain"] == "usageLimits"


async def test_connection_reset_is_a_client_error(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    # aiohttp (3.14) re-sends an idempotent request once when the connection drops, so the
    # client sees the reset only when both tries are reset.
    await _add(emulator, {"endpoint": "events.list", "reset_rate": 1.0, "count": 2})
    with pytest.raises(aiohttp.ClientError):
        await _get(emulator, access)
    status, _, _ = await _get(emulator, access)
    assert status == 200


async def test_truncated_body_is_a_payload_error(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    await _add(emulator, {"endpoint": "events.list", "truncate_rate": 1.0, "count": 1})
    with pytest.raises(aiohttp.ClientPayloadError):
        await _get(emulator, access)


async def test_malformed_body_does_not_decode(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    await _add(emulator, {"endpoint": "events.list", "malformed_rate": 1.0, "count": 1})
    with pytest.raises(json.JSONDecodeError):
        await _get(emulator, access)


async def test_count_limited_rules_retire(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    await _add(emulator, {"endpoint": "events.list", "error_rate": 1.0, "count": 2})
    statuses = [(await _get(emulator, access))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert emulator.faults.rules() == []
    assert emulator.faults.injected == 2


async def test_rules_target_their_endpoint_and_star_targets_all(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    await _add(emulator, {"endpoint": "events.insert", "error_rate": 1.0})
    status, _, _ = await _get(emulator, access)
    assert status == 200
    emulator.faults.clear()
    emulator.faults.add(FaultRule(endpoint="*", error_rate=1.0, error_status=500))
    status, _, _ = await _get(emulator, access)
    assert status == 500
    # The control API is never fault-injected.
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emulator.url}/_emulator/state") as resp,
    ):
        assert resp.status == 200


async def test_latency_rules_still_answer(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    await _add(emulator, {"endpoint": "events.list", "latency_ms": 5, "jitter_ms": 5, "count": 1})
    status, body, _ = await _get(emulator, access)
    assert status == 200
    assert body["kind"] == "calendar#events"
    assert emulator.faults.injected == 1


async def test_rates_are_repeatable_with_a_seed(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))

    async def pattern() -> list[int]:
        async with (
            aiohttp.ClientSession() as http,
            http.delete(f"{emulator.url}/_emulator/faults?seed=42") as resp,
        ):
            assert resp.status == 200
        await _add(emulator, {"endpoint": "events.list", "error_rate": 0.5})
        return [(await _get(emulator, access))[0] for _ in range(12)]

    first = await pattern()
    assert set(first) == {200, 503}
    assert await pattern() == first


async def test_a_hold_stops_a_request_until_released_and_only_that_one(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    hold = emulator.faults.hold("events.list")
    held = asyncio.ensure_future(_get(emulator, access))
    await asyncio.wait_for(hold.reached(), 5)
    # Arrived but unanswered: the handler has not run, and other requests go through.
    assert emulator.store.requests["events.list"] == 0
    assert not held.done()
    status, _, _ = await _get(emulator, access)
    assert status == 200
    assert emulator.store.requests["events.list"] == 1
    hold.release()
    status, _, _ = await held
    assert status == 200
    assert emulator.store.requests["events.list"] == 2


async def test_clearing_faults_releases_held_requests(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    hold = emulator.faults.hold("events.list")
    held = asyncio.ensure_future(_get(emulator, access))
    await asyncio.wait_for(hold.reached(), 5)
    emulator.faults.clear()
    status, _, _ = await held
    assert status == 200
