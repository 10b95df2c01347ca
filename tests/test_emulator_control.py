"""The control API (``/_emulator/``): seeding, state reads, switches, faults, quotas, clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from emulator import events
from emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from emulator.seeding import SyntheticEvents, event_generator
from emulator.state import Calendar
from tests.harness import CALENDAR, CALENDAR_EVENTS, CalendarApi, Emulator


async def _control(emu: Emulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, f"{emu.url}/_emulator/{path}", json=body) as resp,
    ):
        return resp.status, await resp.json()


async def _calendar(emu: Emulator, access: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        return await CalendarApi(http, emu, access).call("GET", f"/{path}")


def _event(summary: str, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": "2026-03-02T10:00:00Z"},
        "end": {"dateTime": "2026-03-02T11:00:00Z"},
        **extra,
    }


async def test_seed_accounts_with_calendars_and_events(emulator: Emulator) -> None:
    status, body = await _control(
        emulator,
        "POST",
        "accounts",
        {
            "accounts": [
                {
                    "email": "Carol@Example.com",
                    "name": "Carol",
                    "time_zone": "Europe/Paris",
                    "events": [_event("Primary one", id="evtone01"), _event("Primary two")],
                    "calendars": [
                        {"id": "team@group.calendar.google.com", "summary": "Team",
                         "timeZone": "Europe/Paris", "events": [_event("Team sync")]},
                    ],
                }
            ]
        },
    )  # fmt: skip
    assert status == 200
    [summary] = body["accounts"]
    assert summary["email"] == "carol@example.com"
    assert summary["events"] == 3
    assert summary["calendars"] == ["carol@example.com", "team@group.calendar.google.com"]

    account = emulator.store.accounts["carol@example.com"]
    assert account.name == "Carol"
    assert account.time_zone == "Europe/Paris"
    status, found = await _control(
        emulator, "GET", "accounts/carol@example.com/calendars/primary/events?id=evtone01"
    )
    assert status == 200
    assert (found["count"], found["confirmed"], found["cancelled"]) == (1, 1, 0)
    assert found["events"][0]["summary"] == "Primary one"

    access, _ = emulator.grant("carol@example.com", (CALENDAR,))
    status, listed = await _calendar(
        emulator, access, "calendars/team@group.calendar.google.com/events"
    )
    assert status == 200
    assert [e["summary"] for e in listed["items"]] == ["Team sync"]


@pytest.mark.parametrize(
    "body",
    [
        {"accounts": [{"email": "no-at-sign"}]},
        {"accounts": [{"email": "a@example.com", "colour": "red"}]},
        {"accounts": [{"email": "a@example.com", "time_zone": "Mars/Olympus"}]},
        {"accounts": [{"email": "a@example.com", "events": [{"summary": "no start"}]}]},
        {"people": []},
    ],
)
async def test_bad_seed_bodies_are_400_with_a_message(
    emulator: Emulator, body: dict[str, Any]
) -> None:
    status, error = await _control(emulator, "POST", "accounts", body)
    assert status == 400
    assert isinstance(error["error"], str)
    assert error["error"]


async def test_synthetic_seed_mints_tokens_and_materializes_lazily(emulator: Emulator) -> None:
    status, body = await _control(
        emulator,
        "POST",
        "seed",
        {
            "accounts": 3,
            "email_pattern": "user{n}@bench.example",
            "first": 1,
            "events_per_calendar": 5,
            "start": "2026-03-02T09:00:00+01:00",
            "spacing_minutes": 60,
            "duration_minutes": 30,
            "time_zone": "Europe/Berlin",
            "grant": {"scopes": [CALENDAR_EVENTS]},
        },
    )
    assert status == 200
    assert (body["accounts"], body["first"], body["last"]) == (
        3,
        "user1@bench.example",
        "user3@bench.example",
    )
    assert set(body["tokens"]) == {f"user{n}@bench.example" for n in (1, 2, 3)}
    _, state = await _control(emulator, "GET", "state")
    assert (state["accounts"], state["pending_calendars"], state["events"]) == (3, 3, 0)

    access = body["tokens"]["user2@bench.example"]["access_token"]
    status, listed = await _calendar(emulator, access, "calendars/primary/events")
    assert status == 200
    items = listed["items"]
    assert len(items) == 5
    assert items[0]["start"] == {
        "dateTime": "2026-03-02T09:00:00+01:00",
        "timeZone": "Europe/Berlin",
    }
    assert items[4]["end"]["dateTime"] == "2026-03-02T13:30:00+01:00"
    _, state = await _control(emulator, "GET", "state")
    assert (state["pending_calendars"], state["events"]) == (2, 5)

    # The refresh token works at the token endpoint like one from the consent flow.
    refresh = body["tokens"]["user2@bench.example"]["refresh_token"]
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emulator.url}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh,
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
        ) as resp,
    ):
        assert resp.status == 200
        assert (await resp.json())["access_token"]


async def test_synthetic_events_are_what_insert_would_store(emulator: Emulator) -> None:
    calendar = Calendar(id="shape@example.com", owner="shape@example.com", summary="s")
    spec = SyntheticEvents(
        count=2,
        start=datetime.fromisoformat("2026-03-02T09:00:00+00:00"),
        spacing=timedelta(hours=1),
        duration=timedelta(minutes=30),
    )
    now = emulator.store.clock.now()
    generated = list(event_generator(spec, now)(calendar))
    made = events.make_event(
        calendar,
        {
            "id": "seed00000001",
            "summary": "Event 1",
            "start": {"dateTime": "2026-03-02T10:00:00Z", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-02T10:30:00Z", "timeZone": "UTC"},
        },
        now=now,
    )
    assert generated[1] == made


async def test_synthetic_seed_refuses_existing_accounts_and_bad_input(emulator: Emulator) -> None:
    emulator.grant("user0@example.com")
    status, error = await _control(emulator, "POST", "seed", {"accounts": 2})
    assert status == 400
    assert "already exist" in error["error"]
    for bad in (
        {"accounts": 0},
        {"accounts": 1, "email_pattern": "fixed@example.com"},
        {"accounts": 1, "first": 5, "start": "2026-03-02T09:00:00"},
        {"accounts": 1, "first": 5, "grant": {"client_id": "nobody", "scopes": [CALENDAR]}},
        {"accounts": 1, "first": 5, "time_zone": "Nowhere/Special"},
    ):
        status, error = await _control(emulator, "POST", "seed", bad)
        assert status == 400, bad
        assert error["error"]


async def test_ten_thousand_accounts_seed_lazily(emulator: Emulator) -> None:
    status, body = await _control(
        emulator,
        "POST",
        "seed",
        {"accounts": 10_000, "events_per_calendar": 250, "grant": {"scopes": [CALENDAR]}},
    )
    assert status == 200
    assert len(body["tokens"]) == 10_000
    # Nothing is built up front (2.5 million events): calendars fill on first access.
    calendars = [account.calendars[email] for email, account in emulator.store.accounts.items()]
    assert all(c.pending is not None for c in calendars)
    calendar = emulator.store.accounts["user9999@example.com"].calendars["user9999@example.com"]
    assert len(calendar.events) == 250
    assert calendar.pending is None


async def test_reset_forgets_everything(emulator: Emulator) -> None:
    emulator.grant()
    await _control(emulator, "POST", "faults", {"endpoint": "events.list", "error_rate": 1.0})
    await _control(emulator, "PUT", "quotas", {"per_user_per_minute": 1})
    emulator.store.clock.advance(30)
    status, _ = await _control(emulator, "POST", "reset", {"fault_seed": 7})
    assert status == 200
    _, state = await _control(emulator, "GET", "state")
    assert state["accounts"] == state["access_tokens"] == state["grants"] == 0
    assert state["clock_offset"] == 0
    _, faults = await _control(emulator, "GET", "faults")
    assert faults["rules"] == []
    _, quotas = await _control(emulator, "GET", "quotas")
    assert quotas["per_user_per_minute"] == 0


async def test_faults_can_be_added_listed_and_cleared(emulator: Emulator) -> None:
    status, added = await _control(
        emulator,
        "POST",
        "faults",
        [{"endpoint": "events.list", "latency_ms": 5}, {"endpoint": "batch", "error_rate": 1}],
    )
    assert (status, added["added"]) == (200, 2)
    _, listed = await _control(emulator, "GET", "faults")
    assert [r["endpoint"] for r in listed["rules"]] == ["events.list", "batch"]
    status, error = await _control(emulator, "POST", "faults", {"endpoint": "x", "bogus": 1})
    assert status == 400
    assert "bogus" in error["error"]
    status, _ = await _control(emulator, "DELETE", "faults?seed=3")
    assert status == 200
    assert emulator.faults.rules() == []


async def test_token_endpoint_failure_shorthand(emulator: Emulator) -> None:
    _, refresh = emulator.grant()
    status, rule = await _control(
        emulator, "POST", "token-endpoint/fail", {"status": 503, "count": 1}
    )
    assert status == 200
    assert rule["endpoint"] == "oauth.token"
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{emulator.url}/token", data=form) as resp:
            assert resp.status == 503
            assert (await resp.json())["error"] == "temporarily_unavailable"
        async with http.post(f"{emulator.url}/token", data=form) as resp:
            assert resp.status == 200
    status, _ = await _control(emulator, "POST", "token-endpoint/fail", {"status": 418})
    assert status == 400


async def test_per_account_switches(emulator: Emulator) -> None:
    access, _ = emulator.grant("dave@example.com", (CALENDAR,))
    status, _ = await _control(
        emulator, "POST", "accounts/dave@example.com/quota-exceeded", {"enabled": True}
    )
    assert status == 200
    assert emulator.store.accounts["dave@example.com"].quota_exceeded

    calendar = emulator.store.accounts["dave@example.com"].calendars["dave@example.com"]
    floor = calendar.sync_floor
    await _control(emulator, "POST", "accounts/dave@example.com/expire-sync-tokens")
    assert calendar.sync_floor == calendar.seq + 1 >= floor

    status, revoked = await _control(emulator, "POST", "accounts/dave@example.com/revoke", {})
    assert (status, revoked["revoked"]) == (200, 1)
    status, _ = await _calendar(emulator, access, "calendars/primary/events")
    assert status == 401

    status, error = await _control(emulator, "POST", "accounts/nobody@example.com/revoke", {})
    assert status == 404
    assert "nobody@example.com" in error["error"]


async def test_clock_advance_expires_access_tokens(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    status, _ = await _calendar(emulator, access, "calendars/primary/events")
    assert status == 200
    status, moved = await _control(emulator, "POST", "clock/advance", {"seconds": 3600})
    assert status == 200
    assert moved["offset"] == 3600
    status, _ = await _calendar(emulator, access, "calendars/primary/events")
    assert status == 401
    status, _ = await _control(emulator, "POST", "clock/advance", {"seconds": -1})
    assert status == 400


async def test_requests_and_channels_are_readable(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    await _calendar(emulator, access, "calendars/primary/events")
    await _calendar(emulator, access, "calendars/primary/events")
    _, counts = await _control(emulator, "GET", "requests")
    assert counts["events.list"] == 2

    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emulator.calendar_base}calendars/primary/events/watch",
            json={
                "id": "seen",
                "type": "web_hook",
                "address": "http://127.0.0.1:9/h",
                "token": "k",
            },
            headers={"Authorization": f"Bearer {access}"},
        ) as resp,
    ):
        assert resp.status == 200
    _, listed = await _control(emulator, "GET", "channels")
    [channel] = listed["channels"]
    assert channel["id"] == "seen"
    assert channel["token"] == "k"
    assert channel["messageNumber"] == 1
    assert channel["deliveries"][0]["state"] == "sync"


async def test_events_read_reports_tombstones(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    async with aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bearer {access}"}
        async with http.post(
            f"{emulator.calendar_base}calendars/primary/events",
            json=_event("Doomed"),
            headers=auth,
        ) as resp:
            assert resp.status == 200
            event_id = (await resp.json())["id"]
        async with http.delete(
            f"{emulator.calendar_base}calendars/primary/events/{event_id}", headers=auth
        ) as resp:
            assert resp.status == 204
    status, found = await _control(
        emulator,
        "GET",
        f"accounts/alice@example.com/calendars/alice@example.com/events?id={event_id}",
    )
    assert status == 200
    assert (found["count"], found["cancelled"]) == (1, 1)
    _, by_uid = await _control(
        emulator,
        "GET",
        "accounts/alice@example.com/calendars/primary/events"
        f"?iCalUID={found['events'][0]['iCalUID']}",
    )
    assert by_uid["count"] == 1
    status, _ = await _control(emulator, "GET", "accounts/alice@example.com/calendars/x/events")
    assert status == 404


async def test_sent_updates_are_readable(emulator: Emulator) -> None:
    access, _ = emulator.grant(scopes=(CALENDAR,))
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emulator.calendar_base}calendars/primary/events?sendUpdates=all",
            json=_event("Invite"),
            headers={"Authorization": f"Bearer {access}"},
        ) as resp,
    ):
        assert resp.status == 200
        event_id = (await resp.json())["id"]
    status, body = await _control(emulator, "GET", "sent-updates")
    assert status == 200
    assert body["sent_updates"] == [
        {"method": "events.insert", "eventId": event_id, "sendUpdates": "all"}
    ]
