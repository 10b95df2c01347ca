"""The emulator's calendarList.list, calendars.get and freebusy.query over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator.state import Calendar
from tests.conftest import MakeEmulator
from tests.harness import CALENDAR, CALENDAR_EVENTS, CalendarApi, Emulator

EMAIL = "carol@example.com"
TEAM = "team@group.calendar.google.com"


class Api(CalendarApi):
    """The shared test client, plus freebusy.query."""

    async def freebusy(self, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = await self.call("POST", "/freeBusy", body=body)
        assert status == 200, answer
        return dict(answer)


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[Api]:
    access, _ = emulator.grant(EMAIL, scopes=(CALENDAR,))
    account = emulator.store.account(EMAIL)
    account.calendars[TEAM] = Calendar(
        id=TEAM, owner=EMAIL, summary="Team", time_zone="Europe/Berlin", description="Shared"
    )
    async with aiohttp.ClientSession() as http:
        yield Api(http, emulator, access)


def timed(start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"start": {"dateTime": start}, "end": {"dateTime": end}, **extra}


async def test_calendar_list_has_the_primary_first_and_owner_access(api: Api) -> None:
    status, listing = await api.call("GET", "/users/me/calendarList")
    assert status == 200
    assert listing["kind"] == "calendar#calendarList"
    first, second = listing["items"]
    assert first["kind"] == "calendar#calendarListEntry"
    assert first["id"] == EMAIL
    assert first["primary"] is True
    assert first["accessRole"] == "owner"
    assert first["timeZone"] == "UTC"
    assert first["summary"] == EMAIL
    assert first["backgroundColor"].startswith("#")
    assert second["id"] == TEAM
    assert "primary" not in second
    assert second["timeZone"] == "Europe/Berlin"
    assert second["description"] == "Shared"


async def test_calendars_get_by_id_and_primary(api: Api) -> None:
    status, primary = await api.call("GET", "/calendars/primary")
    assert status == 200
    assert primary["kind"] == "calendar#calendar"
    assert primary["id"] == EMAIL
    status, team = await api.call("GET", f"/calendars/{TEAM}")
    assert (status, team["summary"], team["timeZone"]) == (200, "Team", "Europe/Berlin")
    status, missing = await api.call("GET", "/calendars/nobody@example.com")
    assert status == 404
    assert missing["error"]["errors"][0]["reason"] == "notFound"


async def test_calendar_methods_need_calendar_scopes(emulator: Emulator) -> None:
    access, _ = emulator.grant(EMAIL, scopes=(CALENDAR_EVENTS,))
    async with aiohttp.ClientSession() as http:
        api = Api(http, emulator, access)
        listing, _ = await api.call("GET", "/users/me/calendarList")
        calendar, _ = await api.call("GET", "/calendars/primary")
    assert (listing, calendar) == (403, 403)


async def test_freebusy_merges_busy_time_of_opaque_live_events(api: Api) -> None:
    await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"))
    await api.insert(timed("2026-03-02T09:30:00Z", "2026-03-02T11:00:00Z", status="tentative"))
    await api.insert(
        timed("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", transparency="transparent")
    )
    gone = await api.insert(timed("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z"))
    await api.call("DELETE", f"/calendars/primary/events/{gone['id']}")
    await api.insert(timed("2026-03-02T16:00:00Z", "2026-03-02T18:00:00Z"))  # clipped at 17:00
    await api.insert(
        {
            "start": {"dateTime": "2026-02-23T07:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-02-23T07:30:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY"],
        }
    )
    answer = await api.freebusy(
        {
            "timeMin": "2026-03-02T00:00:00Z",
            "timeMax": "2026-03-02T17:00:00Z",
            "items": [{"id": "primary"}, {"id": TEAM}, {"id": "stranger@example.com"}],
        }
    )
    assert answer["kind"] == "calendar#freeBusy"
    assert answer["timeMin"] == "2026-03-02T00:00:00.000Z"
    assert answer["timeMax"] == "2026-03-02T17:00:00.000Z"
    assert answer["calendars"]["primary"]["busy"] == [
        {"start": "2026-03-02T06:00:00Z", "end": "2026-03-02T06:30:00Z"},
        {"start": "2026-03-02T09:00:00Z", "end": "2026-03-02T11:00:00Z"},
        {"start": "2026-03-02T16:00:00Z", "end": "2026-03-02T17:00:00Z"},
    ]
    assert answer["calendars"][TEAM] == {"busy": []}
    assert answer["calendars"]["stranger@example.com"] == {
        "errors": [{"domain": "global", "reason": "notFound"}],
        "busy": [],
    }


async def test_freebusy_time_zone_and_unclipped_periods(make_emulator: MakeEmulator) -> None:
    emulator = await make_emulator(freebusy_clip_to_window=False)
    access, _ = emulator.grant(EMAIL, scopes=(CALENDAR,))
    async with aiohttp.ClientSession() as http:
        api = Api(http, emulator, access)
        await api.insert(timed("2026-03-02T08:00:00Z", "2026-03-02T10:00:00Z"))
        answer = await api.freebusy(
            {
                "timeMin": "2026-03-02T09:00:00Z",
                "timeMax": "2026-03-02T12:00:00Z",
                "timeZone": "Europe/Berlin",
                "items": [{"id": EMAIL}],
            }
        )
    assert answer["calendars"][EMAIL]["busy"] == [
        {"start": "2026-03-02T09:00:00+01:00", "end": "2026-03-02T11:00:00+01:00"}
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"timeMax": "2026-03-02T10:00:00Z", "items": []}, "required"),
        ({"timeMin": "2026-03-02", "timeMax": "2026-03-02T10:00:00Z", "items": []}, "badRequest"),
        (
            {"timeMin": "2026-03-02T10:00:00Z", "timeMax": "2026-03-02T10:00:00Z", "items": []},
            "timeRangeEmpty",
        ),
    ],
)
async def test_freebusy_rejects_bad_windows(api: Api, body: dict[str, Any], reason: str) -> None:
    status, answer = await api.call("POST", "/freeBusy", body=body)
    assert status == 400
    assert answer["error"]["errors"][0]["reason"] == reason
