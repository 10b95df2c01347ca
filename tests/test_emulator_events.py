"""The emulator's events methods over real HTTP, each rule of google-api-facts §4.1/§4.2."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator.seeding import SyntheticEvents, seed_synthetic
from emulator.state import Calendar
from tests.conftest import MakeEmulator
from tests.harness import CalendarApi, Emulator

EMAIL = "alice@example.com"
HOUR = dt.timedelta(hours=1)


class Api(CalendarApi):
    """The shared test client, plus paging through a whole listing."""

    async def list_all(self, **params: Any) -> tuple[list[dict[str, Any]], str]:
        """Every page; the items and the final nextSyncToken."""
        items: list[dict[str, Any]] = []
        page = await self.page(**params)
        while True:
            items.extend(page["items"])
            if "nextPageToken" not in page:
                return items, page["nextSyncToken"]
            assert "nextSyncToken" not in page
            page = await self.page(**params, pageToken=page["nextPageToken"])


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[Api]:
    access, _ = emulator.grant(EMAIL)
    async with aiohttp.ClientSession() as http:
        yield Api(http, emulator, access)


def timed(start: str, end: str, **extra: Any) -> dict[str, Any]:
    return {"start": {"dateTime": start}, "end": {"dateTime": end}, **extra}


def error_of(body: Any) -> dict[str, Any]:
    error = body["error"]
    return {"code": error["code"], "message": error["message"], **error["errors"][0]}


def primary(emulator: Emulator) -> Calendar:
    calendar = emulator.store.calendar(emulator.store.account(EMAIL), "primary")
    assert calendar is not None
    return calendar


# events.insert ------------------------------------------------------------------------------


async def test_insert_adds_googles_server_fields(api: Api) -> None:
    event = await api.insert(timed("2026-03-02T09:00:00+01:00", "2026-03-02T10:00:00+01:00"))
    assert event["kind"] == "calendar#event"
    assert re.fullmatch(r"[a-v0-9]{5,1024}", event["id"])
    assert event["status"] == "confirmed"
    assert event["etag"].startswith('"')
    assert event["htmlLink"].startswith("https://www.google.com/calendar/event?eid=")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["created"])
    assert event["updated"] == event["created"]
    assert event["creator"] == {"email": EMAIL, "self": True}
    assert event["organizer"] == {"email": EMAIL, "self": True}
    assert event["iCalUID"] == f"{event['id']}@google.com"
    assert event["sequence"] == 0
    assert event["reminders"] == {"useDefault": True}
    assert event["eventType"] == "default"


@pytest.mark.parametrize(
    ("body", "reason", "message"),
    [
        ({"start": {"date": "2026-03-02"}}, "required", "Missing end time."),
        ({"end": {"date": "2026-03-02"}}, "required", "Missing start time."),
        (
            {"start": {"dateTime": "2026-03-02T09:00:00"}, "end": {"date": "2026-03-03"}},
            "required",
            "Missing time zone definition for start time.",
        ),
        (
            {
                "start": {"date": "2026-03-02", "dateTime": "2026-03-02T09:00:00Z"},
                "end": {"date": "2026-03-03"},
            },
            "invalid",
            "Invalid start time.",
        ),
        (
            {
                "start": {"dateTime": "2026-03-02T09:00:00Z", "timeZone": "Mars/Olympus"},
                "end": {"dateTime": "2026-03-02T10:00:00Z"},
            },
            "invalid",
            "Invalid time zone definition for start time.",
        ),
        (
            timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", recurrence=["RRULE:FREQ=DAILY"]),
            "required",
            "Missing time zone definition for start time.",
        ),
        (
            timed("2026-03-02T10:00:00Z", "2026-03-02T09:00:00Z"),
            "timeRangeEmpty",
            "The specified time range is empty.",
        ),
        (
            {"start": {"date": "2026-03-02"}, "end": {"date": "2026-03-02"}},
            "timeRangeEmpty",
            "The specified time range is empty.",
        ),
        (
            timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", attendees=[{"displayName": "x"}]),
            "required",
            "Missing attendee email.",
        ),
        (
            timed(
                "2026-03-02T09:00:00Z",
                "2026-03-02T10:00:00Z",
                reminders={
                    "useDefault": False,
                    "overrides": [{"method": "popup", "minutes": 40321}],
                },
            ),
            "invalid",
            "Invalid reminder minutes value.",
        ),
        (
            timed(
                "2026-03-02T09:00:00Z",
                "2026-03-02T10:00:00Z",
                reminders={
                    "useDefault": False,
                    "overrides": [{"method": "popup", "minutes": m} for m in range(6)],
                },
            ),
            "tooManyReminders",
            "Too many reminders.",
        ),
        (
            {
                "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "Europe/Berlin"},
                "end": {"dateTime": "2026-03-02T10:00:00", "timeZone": "Europe/Berlin"},
                "recurrence": ["RRULE:FREQ=SOMETIMES"],
            },
            "invalid",
            "Invalid recurrence rule.",
        ),
    ],
)
async def test_insert_rejects_bad_bodies_as_google_does(
    api: Api, body: dict[str, Any], reason: str, message: str
) -> None:
    status, answer = await api.call("POST", "/calendars/primary/events", body=body)
    assert status == 400
    error = error_of(answer)
    assert (error["reason"], error["message"]) == (reason, message)


async def test_insert_takes_local_time_with_a_time_zone_and_all_day_dates(api: Api) -> None:
    local = await api.insert(
        {
            "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-03-02T10:00:00", "timeZone": "Europe/Berlin"},
        }
    )
    day = await api.insert({"start": {"date": "2026-03-02"}, "end": {"date": "2026-03-03"}})
    assert local["start"]["timeZone"] == "Europe/Berlin"
    assert day["start"] == {"date": "2026-03-02"}


async def test_insert_with_a_client_id_checks_the_alphabet_and_duplicates(api: Api) -> None:
    body = timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z")
    status, answer = await api.call(
        "POST", "/calendars/primary/events", body={**body, "id": "Not_Base32hex"}
    )
    assert status == 400
    assert error_of(answer)["reason"] == "invalid"
    assert error_of(answer)["message"] == "Invalid resource id value."
    status, _ = await api.call("POST", "/calendars/primary/events", body={**body, "id": "abcd"})
    assert status == 400  # shorter than 5

    created = await api.insert({**body, "id": "meeting0001"})
    assert created["id"] == "meeting0001"
    status, answer = await api.call(
        "POST", "/calendars/primary/events", body={**body, "id": "meeting0001"}
    )
    assert status == 409
    assert error_of(answer) == {
        "code": 409,
        "message": "The requested identifier already exists.",
        "domain": "global",
        "reason": "duplicate",
    }


async def test_a_deleted_events_id_stays_taken_unless_configured(
    make_emulator: MakeEmulator,
) -> None:
    body = timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", id="reused0001")
    for includes_cancelled, expected in ((True, 409), (False, 200)):
        emulator = await make_emulator(duplicate_id_includes_cancelled=includes_cancelled)
        access, _ = emulator.grant(EMAIL)
        async with aiohttp.ClientSession() as http:
            api = Api(http, emulator, access)
            await api.insert(body)
            status, _ = await api.call("DELETE", "/calendars/primary/events/reused0001")
            assert status == 204
            status, _ = await api.call("POST", "/calendars/primary/events", body=body)
        assert status == expected


async def test_conference_is_created_only_with_conference_data_version_1(api: Api) -> None:
    body = timed(
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
        conferenceData={
            "createRequest": {"requestId": "r1", "conferenceSolutionKey": {"type": "hangoutsMeet"}}
        },
    )
    with_meet = await api.insert(body, conferenceDataVersion="1")
    data = with_meet["conferenceData"]
    assert re.fullmatch(r"[a-z]{3}-[a-z]{4}-[a-z]{3}", data["conferenceId"])
    assert data["createRequest"]["status"] == {"statusCode": "success"}
    assert data["entryPoints"][0]["uri"] == f"https://meet.google.com/{data['conferenceId']}"
    assert with_meet["hangoutLink"] == data["entryPoints"][0]["uri"]

    without = await api.insert(body)
    assert "conferenceData" not in without
    assert "hangoutLink" not in without


async def test_send_updates_is_recorded_and_checked(api: Api, emulator: Emulator) -> None:
    body = timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z")
    event = await api.insert(body, sendUpdates="all")
    status, _ = await api.call(
        "DELETE", f"/calendars/primary/events/{event['id']}", params={"sendUpdates": "none"}
    )
    assert status == 204
    assert emulator.store.sent_updates == [
        ("events.insert", event["id"], "all"),
        ("events.delete", event["id"], "none"),
    ]
    status, answer = await api.call(
        "POST", "/calendars/primary/events", params={"sendUpdates": "everyone"}, body=body
    )
    assert status == 400
    assert error_of(answer)["reason"] == "invalidParameter"


async def test_insert_stores_the_event_and_advances_the_change_sequence(
    api: Api, emulator: Emulator
) -> None:
    calendar = primary(emulator)
    before = calendar.seq
    event = await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"))
    stored = calendar.events[event["id"]]
    assert stored.seq == calendar.seq == before + 1
    assert stored.resource["etag"] == event["etag"]


# events.get ---------------------------------------------------------------------------------


async def test_get_returns_cancelled_events_and_404_for_unknown(api: Api) -> None:
    event = await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", summary="x"))
    await api.call("DELETE", f"/calendars/primary/events/{event['id']}")
    status, got = await api.call("GET", f"/calendars/primary/events/{event['id']}")
    assert status == 200
    assert got["status"] == "cancelled"
    status, missing = await api.call("GET", "/calendars/primary/events/nosuchevent")
    assert status == 404
    assert error_of(missing)["reason"] == "notFound"
    status, _ = await api.call("GET", "/calendars/other@example.com/events/nosuchevent")
    assert status == 404


# events.list: windows, ordering, paging -----------------------------------------------------


async def test_time_min_bounds_ends_and_time_max_bounds_starts_exclusively(api: Api) -> None:
    ends_at_min = await api.insert(timed("2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z"))
    overlaps_min = await api.insert(timed("2026-03-02T08:30:00Z", "2026-03-02T09:30:00Z"))
    inside = await api.insert(timed("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"))
    starts_at_max = await api.insert(timed("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z"))
    all_day = await api.insert({"start": {"date": "2026-03-02"}, "end": {"date": "2026-03-03"}})
    page = await api.page(timeMin="2026-03-02T09:00:00Z", timeMax="2026-03-02T12:00:00+00:00")
    ids = {e["id"] for e in page["items"]}
    assert ids == {overlaps_min["id"], inside["id"], all_day["id"]}
    assert ends_at_min["id"] not in ids
    assert starts_at_max["id"] not in ids


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"timeMin": "2026-03-02T09:00:00"}, 400, "badRequest"),
        ({"timeMax": "2026-03-02"}, 400, "badRequest"),
        ({"maxResults": "0"}, 400, "invalidParameter"),
        ({"maxResults": "2501"}, 400, "invalidParameter"),
        ({"maxResults": "ten"}, 400, "invalidParameter"),
        ({"orderBy": "startTime"}, 400, "badRequest"),
        ({"orderBy": "summary"}, 400, "invalidParameter"),
        ({"singleEvents": "yes"}, 400, "invalidParameter"),
        ({"pageToken": "garbage"}, 400, "invalid"),
        ({"pageToken": "eyJrIjoicGFnZSJ9"}, 400, "invalid"),
    ],
)
async def test_list_rejects_bad_parameters(
    api: Api, params: dict[str, str], status: int, reason: str
) -> None:
    got, answer = await api.call("GET", "/calendars/primary/events", params=params)
    assert got == status
    assert error_of(answer)["reason"] == reason


async def test_empty_time_range_is_calendar_time_range_empty(api: Api) -> None:
    status, answer = await api.call(
        "GET",
        "/calendars/primary/events",
        params={"timeMin": "2026-03-02T10:00:00Z", "timeMax": "2026-03-02T11:00:00+01:00"},
    )
    assert status == 400
    assert error_of(answer) == {
        "code": 400,
        "message": "The specified time range is empty.",
        "domain": "calendar",
        "reason": "timeRangeEmpty",
        "locationType": "parameter",
        "location": "timeMax",
    }


async def test_list_envelope_has_googles_fields(api: Api) -> None:
    page = await api.page(timeZone="Europe/Berlin")
    assert page["kind"] == "calendar#events"
    assert page["summary"] == EMAIL
    assert page["timeZone"] == "Europe/Berlin"
    assert page["accessRole"] == "owner"
    assert page["defaultReminders"] == [{"method": "popup", "minutes": 10}]
    assert {"etag", "updated", "items", "nextSyncToken"} <= set(page)


async def test_order_by_start_time_and_updated(api: Api) -> None:
    late = await api.insert(timed("2026-03-05T09:00:00Z", "2026-03-05T10:00:00Z"))
    early = await api.insert(timed("2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z"))
    middle = await api.insert({"start": {"date": "2026-03-03"}, "end": {"date": "2026-03-04"}})
    by_start = await api.page(singleEvents="true", orderBy="startTime")
    assert [e["id"] for e in by_start["items"]] == [early["id"], middle["id"], late["id"]]
    by_updated = await api.page(orderBy="updated")
    updated = [e["updated"] for e in by_updated["items"]]
    assert updated == sorted(updated)


async def test_paging_gives_every_event_once_and_sync_token_only_at_the_end(api: Api) -> None:
    created = {
        (await api.insert(timed(f"2026-03-{d:02d}T09:00:00Z", f"2026-03-{d:02d}T10:00:00Z")))["id"]
        for d in range(1, 8)
    }
    first = await api.page(maxResults="3")
    assert len(first["items"]) == 3
    assert "nextPageToken" in first
    assert "nextSyncToken" not in first
    items, sync = await api.list_all(maxResults="3")
    assert [e["id"] for e in items] == sorted(created)
    assert sync
    by_start, _ = await api.list_all(maxResults="2", singleEvents="true", orderBy="startTime")
    starts = [e["start"]["dateTime"] for e in by_start]
    assert starts == sorted(starts)
    assert len(by_start) == 7


async def test_a_page_token_only_continues_the_listing_it_came_from(api: Api) -> None:
    for d in range(1, 4):
        await api.insert(timed(f"2026-03-0{d}T09:00:00Z", f"2026-03-0{d}T10:00:00Z"))
    first = await api.page(maxResults="1")
    status, answer = await api.call(
        "GET",
        "/calendars/primary/events",
        params={"maxResults": "1", "pageToken": first["nextPageToken"], "q": "other"},
    )
    assert status == 400
    assert error_of(answer)["location"] == "pageToken"


async def test_default_page_size_is_250(api: Api, emulator: Emulator) -> None:
    calendar = primary(emulator)
    from emulator.events import make_event
    from emulator.state import Event

    for i in range(260):
        resource = make_event(
            calendar,
            timed(f"2026-03-01T{i % 24:02d}:00:00Z", f"2026-03-01T{i % 24:02d}:30:00Z"),
            now=emulator.store.clock.now(),
        )
        event = Event(resource, calendar.seq)
        calendar.events[event.id] = event
        emulator.store.change(calendar, event)
    page = await api.page()
    assert len(page["items"]) == 250
    assert "nextPageToken" in page


# events.list: sync --------------------------------------------------------------------------


async def test_incremental_sync_returns_changes_and_stripped_tombstones(api: Api) -> None:
    kept = await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", summary="kept"))
    changed = await api.insert(timed("2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z"))
    deleted = await api.insert(timed("2026-03-04T09:00:00Z", "2026-03-04T10:00:00Z", summary="s"))
    items, token = await api.list_all()
    assert len(items) == 3

    await api.call("PATCH", f"/calendars/primary/events/{changed['id']}", body={"summary": "new"})
    await api.call("DELETE", f"/calendars/primary/events/{deleted['id']}")
    added = await api.insert(timed("2026-03-05T09:00:00Z", "2026-03-05T10:00:00Z"))

    changes, next_token = await api.list_all(syncToken=token)
    by_id = {e["id"]: e for e in changes}
    assert set(by_id) == {changed["id"], deleted["id"], added["id"]}
    assert kept["id"] not in by_id
    assert by_id[changed["id"]]["summary"] == "new"
    tombstone = by_id[deleted["id"]]
    assert tombstone["status"] == "cancelled"
    assert "summary" not in tombstone
    assert "start" not in tombstone

    again, _ = await api.list_all(syncToken=next_token)
    assert again == []

    detailed, _ = await api.list_all(syncToken=token, showDeleted="true")
    assert {e["id"]: e for e in detailed}[deleted["id"]]["summary"] == "s"


async def test_the_first_listing_of_a_bulk_seeded_calendar_gives_a_token_that_covers_it(
    api: Api, emulator: Emulator
) -> None:
    start = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    spec = SyntheticEvents(count=5, start=start, spacing=dt.timedelta(hours=1), duration=HOUR)
    seed_synthetic(emulator.store, emails=["bob@example.com"], spec=spec, grant=None)
    bob, _ = emulator.grant("bob@example.com")
    api.headers = {"Authorization": f"Bearer {bob}"}
    items, token = await api.list_all()  # its events materialize in this request
    assert len(items) == 5
    changes, _ = await api.list_all(syncToken=token)
    assert changes == []  # nothing changed since that listing


async def test_sync_paging_with_page_token_and_changes_during_paging(api: Api) -> None:
    events = [
        await api.insert(timed(f"2026-03-0{d}T09:00:00Z", f"2026-03-0{d}T10:00:00Z"))
        for d in range(1, 6)
    ]
    _, token = await api.list_all()
    for event in events:
        await api.call("PATCH", f"/calendars/primary/events/{event['id']}", body={"summary": "v2"})
    first = await api.page(syncToken=token, maxResults="2")
    assert len(first["items"]) == 2
    assert "nextSyncToken" not in first
    # A change while paging is reported by the next sync, even if its page was already read.
    first_id = first["items"][0]["id"]
    await api.call("PATCH", f"/calendars/primary/events/{first_id}", body={"summary": "v3"})
    rest: list[dict[str, Any]] = []
    page = first
    while "nextPageToken" in page:
        page = await api.page(syncToken=token, maxResults="2", pageToken=page["nextPageToken"])
        rest.extend(page["items"])
    assert {e["id"] for e in first["items"] + rest} == {e["id"] for e in events}
    later, _ = await api.list_all(syncToken=page["nextSyncToken"])
    assert [(e["id"], e["summary"]) for e in later] == [(first_id, "v3")]


@pytest.mark.parametrize(
    "forbidden",
    [
        {"timeMin": "2026-03-01T00:00:00Z"},
        {"timeMax": "2026-03-01T00:00:00Z"},
        {"q": "x"},
        {"orderBy": "updated"},
        {"iCalUID": "x@google.com"},
        {"updatedMin": "2026-03-01T00:00:00Z"},
        {"privateExtendedProperty": "a=b"},
        {"sharedExtendedProperty": "a=b"},
    ],
)
async def test_sync_token_with_a_forbidden_parameter_is_400(
    api: Api, forbidden: dict[str, str]
) -> None:
    _, token = await api.list_all()
    status, answer = await api.call(
        "GET", "/calendars/primary/events", params={"syncToken": token, **forbidden}
    )
    assert status == 400
    assert error_of(answer)["location"] == next(iter(forbidden))


async def test_forbidden_parameter_status_is_configurable(make_emulator: MakeEmulator) -> None:
    emulator = await make_emulator(sync_token_forbidden_param_status=422)
    access, _ = emulator.grant(EMAIL)
    async with aiohttp.ClientSession() as http:
        api = Api(http, emulator, access)
        _, token = await api.list_all()
        status, _ = await api.call(
            "GET", "/calendars/primary/events", params={"syncToken": token, "q": "x"}
        )
    assert status == 422


async def test_unparseable_or_foreign_sync_token_is_400_invalid(
    api: Api, emulator: Emulator
) -> None:
    for token in ("garbage!", "CPDAlvWDx70CEPDAlvWDx70CGAU="):
        status, answer = await api.call(
            "GET", "/calendars/primary/events", params={"syncToken": token}
        )
        assert status == 400
        error = error_of(answer)
        assert (error["reason"], error["message"]) == ("invalid", "Invalid sync token value.")
    # A token from another calendar of the same account.
    account = emulator.store.account(EMAIL)
    account.calendars["team@group.calendar.google.com"] = Calendar(
        id="team@group.calendar.google.com", owner=EMAIL, summary="Team"
    )
    status, other = await api.call("GET", "/calendars/team@group.calendar.google.com/events")
    assert status == 200
    status, answer = await api.call(
        "GET", "/calendars/primary/events", params={"syncToken": other["nextSyncToken"]}
    )
    assert status == 400
    assert error_of(answer)["message"] == "Invalid sync token value."


async def test_expired_sync_token_is_410_full_sync_required(api: Api, emulator: Emulator) -> None:
    await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"))
    _, token = await api.list_all()
    primary(emulator).expire_sync_tokens()
    status, answer = await api.call("GET", "/calendars/primary/events", params={"syncToken": token})
    assert status == 410
    assert answer == {
        "error": {
            "errors": [
                {
                    "domain": "calendar",
                    "reason": "fullSyncRequired",
                    "message": "Sync token is no longer valid, a full sync is required.",
                    "locationType": "parameter",
                    "location": "syncToken",
                }
            ],
            "code": 410,
            "message": "Sync token is no longer valid, a full sync is required.",
            "status": "NOT_FOUND",
        }
    }
    # A full sync after the expiry gives a token that works at once.
    _, fresh = await api.list_all()
    changes, _ = await api.list_all(syncToken=fresh)
    assert changes == []


# events.list: filters -----------------------------------------------------------------------


async def test_show_deleted_and_updated_min(api: Api, emulator: Emulator) -> None:
    gone = await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"))
    old = await api.insert(timed("2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z"))
    await api.call("DELETE", f"/calendars/primary/events/{gone['id']}")
    plain = await api.page()
    assert [e["id"] for e in plain["items"]] == [old["id"]]
    shown = await api.page(showDeleted="true")
    assert {e["id"] for e in shown["items"]} == {gone["id"], old["id"]}

    emulator.store.clock.advance(60)
    fresh = await api.insert(timed("2026-03-04T09:00:00Z", "2026-03-04T10:00:00Z"))
    emulator.store.clock.advance(60)
    await api.call("DELETE", f"/calendars/primary/events/{old['id']}")
    since = gone["updated"].replace("Z", "+00:00")
    recent = await api.page(updatedMin=since)
    assert {e["id"] for e in recent["items"]} == {gone["id"], old["id"], fresh["id"]}
    later = await api.page(updatedMin=fresh["updated"])
    by_id = {e["id"]: e for e in later["items"]}
    assert set(by_id) == {fresh["id"], old["id"]}
    assert by_id[old["id"]]["status"] == "cancelled"


async def test_q_searches_text_attendees_and_organizer(api: Api) -> None:
    standup = await api.insert(
        timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", summary="Daily STANDUP")
    )
    review = await api.insert(
        timed(
            "2026-03-03T09:00:00Z",
            "2026-03-03T10:00:00Z",
            location="Room 4",
            attendees=[{"email": "bob@example.com", "displayName": "Bob Builder"}],
        )
    )

    async def ids(text: str) -> set[str]:
        return {e["id"] for e in (await api.page(q=text))["items"]}

    assert await ids("standup") == {standup["id"]}
    assert await ids("room 4") == {review["id"]}
    assert await ids("bob@example") == {review["id"]}
    assert await ids("builder") == {review["id"]}
    assert await ids("alice@example.com") == {standup["id"], review["id"]}
    assert await ids("nothing") == set()


async def test_ical_uid_and_extended_property_filters(api: Api) -> None:
    tagged = await api.insert(
        timed(
            "2026-03-02T09:00:00Z",
            "2026-03-02T10:00:00Z",
            extendedProperties={"private": {"job": "42", "k": "v"}, "shared": {"team": "a"}},
        )
    )
    other = await api.insert(
        timed(
            "2026-03-03T09:00:00Z",
            "2026-03-03T10:00:00Z",
            extendedProperties={"private": {"job": "43"}},
        )
    )
    by_uid = await api.page(iCalUID=other["iCalUID"])
    assert [e["id"] for e in by_uid["items"]] == [other["id"]]
    private = await api.page(privateExtendedProperty=["job=42", "k=v"])
    assert [e["id"] for e in private["items"]] == [tagged["id"]]
    none = await api.page(privateExtendedProperty=["job=42", "k=w"])
    assert none["items"] == []
    shared = await api.page(sharedExtendedProperty="team=a")
    assert [e["id"] for e in shared["items"]] == [tagged["id"]]


async def test_list_items_are_served_from_the_cache_and_refreshed_on_change(
    api: Api, emulator: Emulator
) -> None:
    event = await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", summary="a"))
    await api.page(timeMin="2026-03-01T00:00:00Z")
    stored = primary(emulator).events[event["id"]]
    assert stored.json_cache is not None
    assert stored.span is not None
    await api.call("PATCH", f"/calendars/primary/events/{event['id']}", body={"summary": "b"})
    assert stored.span is None
    assert stored.json_cache is not None
    assert b'"summary": "b"' in stored.json_cache
    page = await api.page()
    assert page["items"][0]["summary"] == "b"


async def test_a_repeated_listing_answers_as_the_calendar_is_now(
    api: Api, emulator: Emulator
) -> None:
    """The same query, asked again after each kind of change, sees the change (page bodies
    are kept between identical queries)."""
    query = {"timeMin": "2026-03-01T00:00:00Z", "singleEvents": "true", "orderBy": "startTime"}
    first = await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", summary="a"))
    before = await api.page(**query)
    assert await api.page(**query) == before
    path = f"/calendars/primary/events/{first['id']}"
    await api.call("PATCH", path, body={"summary": "b"})
    assert [e["summary"] for e in (await api.page(**query))["items"]] == ["b"]
    await api.insert(timed("2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z", summary="c"))
    assert [e["summary"] for e in (await api.page(**query))["items"]] == ["c", "b"]
    await api.call("DELETE", path)
    after_delete = await api.page(**query)
    assert [e["summary"] for e in after_delete["items"]] == ["c"]
    calendar = primary(emulator)
    calendar.expire_sync_tokens()  # no event changes: only the token may tell
    expired = await api.page(**query)
    assert expired["nextSyncToken"] != after_delete["nextSyncToken"]
    calendar.time_zone = "Europe/Berlin"
    assert (await api.page(**query))["timeZone"] == "Europe/Berlin"
    daily = {
        "summary": "r",
        "start": {"dateTime": "2026-03-03T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-03T10:00:00", "timeZone": "UTC"},
        "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
    }
    await api.insert(daily)
    assert [e["summary"] for e in (await api.page(**query))["items"]] == ["c", "r", "r", "r"]
    emulator.store.config = dataclasses.replace(emulator.store.config, recurrence_max_instances=1)
    assert [e["summary"] for e in (await api.page(**query))["items"]] == ["c", "r"]


# recurring events ---------------------------------------------------------------------------


def weekly(**extra: Any) -> dict[str, Any]:
    return {
        "summary": "weekly",
        "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "Europe/Berlin"},
        "end": {"dateTime": "2026-03-02T10:00:00", "timeZone": "Europe/Berlin"},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=6", "EXDATE;TZID=Europe/Berlin:20260309T090000"],
        **extra,
    }


async def test_single_events_expands_recurrences_in_local_time(api: Api) -> None:
    master = await api.insert(weekly())
    masters = await api.page()
    assert [e["id"] for e in masters["items"]] == [master["id"]]
    assert masters["items"][0]["recurrence"] == weekly()["recurrence"]

    instances = (await api.page(singleEvents="true", orderBy="startTime"))["items"]
    # 6 weeks minus the EXDATE; Berlin switches to summer time on 2026-03-29.
    assert [i["start"]["dateTime"] for i in instances] == [
        "2026-03-02T09:00:00+01:00",
        "2026-03-16T09:00:00+01:00",
        "2026-03-23T09:00:00+01:00",
        "2026-03-30T09:00:00+02:00",
        "2026-04-06T09:00:00+02:00",
    ]
    first, after_dst = instances[0], instances[3]
    assert first["id"] == f"{master['id']}_20260302T080000Z"
    assert after_dst["id"] == f"{master['id']}_20260330T070000Z"
    assert first["recurringEventId"] == master["id"]
    assert first["originalStartTime"] == {
        "dateTime": "2026-03-02T09:00:00+01:00",
        "timeZone": "Europe/Berlin",
    }
    assert "recurrence" not in first
    assert first["end"]["dateTime"] == "2026-03-02T10:00:00+01:00"


async def test_recurrence_respects_the_window_and_the_hard_cap(
    make_emulator: MakeEmulator,
) -> None:
    emulator = await make_emulator(recurrence_max_instances=10)
    access, _ = emulator.grant(EMAIL)
    async with aiohttp.ClientSession() as http:
        api = Api(http, emulator, access)
        daily = {
            "start": {"dateTime": "2026-01-01T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-01-01T10:00:00", "timeZone": "UTC"},
            "recurrence": ["RRULE:FREQ=DAILY"],
        }
        await api.insert(daily)
        window = await api.page(
            singleEvents="true", timeMin="2026-02-01T09:30:00Z", timeMax="2026-02-04T09:00:00Z"
        )
        capped = await api.page(singleEvents="true")
        outside = await api.page(timeMax="2025-12-31T00:00:00Z")
    starts = sorted(i["start"]["dateTime"] for i in window["items"])
    assert starts == [
        "2026-02-01T09:00:00+00:00",
        "2026-02-02T09:00:00+00:00",
        "2026-02-03T09:00:00+00:00",
    ]
    assert len(capped["items"]) == 10
    assert outside["items"] == []


async def test_all_day_recurring_instance_ids_use_the_date(api: Api) -> None:
    master = await api.insert(
        {
            "start": {"date": "2026-03-02"},
            "end": {"date": "2026-03-03"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"],
        }
    )
    items = (await api.page(singleEvents="true", orderBy="startTime"))["items"]
    assert [i["id"] for i in items] == [
        f"{master['id']}_20260302",
        f"{master['id']}_20260303",
        f"{master['id']}_20260304",
    ]
    assert items[1]["start"] == {"date": "2026-03-03"}
    assert items[1]["end"] == {"date": "2026-03-04"}


async def test_instance_ids_resolve_and_exceptions_override_instances(api: Api) -> None:
    master = await api.insert(weekly())
    _, token = await api.list_all(singleEvents="true")
    moved_id = f"{master['id']}_20260316T080000Z"
    dropped_id = f"{master['id']}_20260323T080000Z"

    status, instance = await api.call("GET", f"/calendars/primary/events/{moved_id}")
    assert status == 200
    assert instance["recurringEventId"] == master["id"]
    status, _ = await api.call("GET", f"/calendars/primary/events/{master['id']}_20260317T080000Z")
    assert status == 404  # not an occurrence

    status, moved = await api.call(
        "PATCH",
        f"/calendars/primary/events/{moved_id}",
        body={
            "summary": "moved",
            "start": {"dateTime": "2026-03-17T09:00:00+01:00"},
            "end": {"dateTime": "2026-03-17T10:00:00+01:00"},
        },
    )
    assert status == 200
    assert moved["id"] == moved_id
    assert moved["originalStartTime"]["dateTime"] == "2026-03-16T09:00:00+01:00"
    status, _ = await api.call("DELETE", f"/calendars/primary/events/{dropped_id}")
    assert status == 204

    items = (await api.page(singleEvents="true", orderBy="startTime"))["items"]
    assert [(i["id"], i.get("summary")) for i in items] == [
        (f"{master['id']}_20260302T080000Z", "weekly"),
        (moved_id, "moved"),
        (f"{master['id']}_20260330T070000Z", "weekly"),
        (f"{master['id']}_20260406T070000Z", "weekly"),
    ]
    changes, _ = await api.list_all(syncToken=token, singleEvents="true")
    by_id = {c["id"]: c for c in changes}
    assert set(by_id) == {moved_id, dropped_id}
    assert by_id[dropped_id]["status"] == "cancelled"
    assert by_id[dropped_id]["recurringEventId"] == master["id"]
    assert by_id[dropped_id]["originalStartTime"]["dateTime"] == "2026-03-23T09:00:00+01:00"
    assert "summary" not in by_id[dropped_id]


async def test_deleting_a_series_cancels_it_and_its_exceptions(api: Api) -> None:
    master = await api.insert(weekly())
    moved_id = f"{master['id']}_20260316T080000Z"
    await api.call("PATCH", f"/calendars/primary/events/{moved_id}", body={"summary": "x"})
    status, _ = await api.call("DELETE", f"/calendars/primary/events/{master['id']}")
    assert status == 204
    assert (await api.page(singleEvents="true"))["items"] == []
    status, exception = await api.call("GET", f"/calendars/primary/events/{moved_id}")
    assert exception["status"] == "cancelled"


async def test_events_instances_pages_through_a_series(api: Api) -> None:
    master = await api.insert(weekly())
    status, first = await api.call(
        "GET", f"/calendars/primary/events/{master['id']}/instances", params={"maxResults": "2"}
    )
    assert status == 200
    assert first["kind"] == "calendar#events"
    assert len(first["items"]) == 2
    ids = [i["id"] for i in first["items"]]
    page = first
    while "nextPageToken" in page:
        status, page = await api.call(
            "GET",
            f"/calendars/primary/events/{master['id']}/instances",
            params={"maxResults": "2", "pageToken": page["nextPageToken"]},
        )
        ids.extend(i["id"] for i in page["items"])
    assert len(ids) == 5
    assert ids[0] == f"{master['id']}_20260302T080000Z"
    status, window = await api.call(
        "GET",
        f"/calendars/primary/events/{master['id']}/instances",
        params={"timeMin": "2026-03-20T00:00:00Z", "timeMax": "2026-04-01T00:00:00Z"},
    )
    assert [i["start"]["dateTime"] for i in window["items"]] == [
        "2026-03-23T09:00:00+01:00",
        "2026-03-30T09:00:00+02:00",
    ]


async def test_instances_of_a_single_event(make_emulator: MakeEmulator) -> None:
    for as_error, expected in ((False, 200), (True, 400)):
        emulator = await make_emulator(instances_non_recurring_error=as_error)
        access, _ = emulator.grant(EMAIL)
        async with aiohttp.ClientSession() as http:
            api = Api(http, emulator, access)
            event = await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"))
            status, answer = await api.call(
                "GET", f"/calendars/primary/events/{event['id']}/instances"
            )
            missing, _ = await api.call("GET", "/calendars/primary/events/nosuch1/instances")
        assert status == expected
        assert missing == 404
        if status == 200:
            assert [i["id"] for i in answer["items"]] == [event["id"]]


# events.patch / events.update ---------------------------------------------------------------


async def test_patch_merges_and_bumps_sequence_only_for_time_changes(api: Api) -> None:
    event = await api.insert(
        timed(
            "2026-03-02T09:00:00Z",
            "2026-03-02T10:00:00Z",
            summary="a",
            description="keep me",
            extendedProperties={"private": {"one": "1"}},
        )
    )
    path = f"/calendars/primary/events/{event['id']}"
    status, renamed = await api.call(
        "PATCH", path, body={"summary": "b", "extendedProperties": {"private": {"two": "2"}}}
    )
    assert status == 200
    assert renamed["summary"] == "b"
    assert renamed["description"] == "keep me"
    assert renamed["extendedProperties"] == {"private": {"one": "1", "two": "2"}}
    assert renamed["sequence"] == 0
    assert renamed["etag"] != event["etag"]
    assert renamed["created"] == event["created"]

    status, moved = await api.call(
        "PATCH", path, body={"start": {"date": "2026-03-03"}, "end": {"date": "2026-03-04"}}
    )
    assert status == 200
    assert moved["start"] == {"date": "2026-03-03"}
    assert moved["sequence"] == 1
    status, cleared = await api.call("PATCH", path, body={"description": None})
    assert "description" not in cleared

    status, answer = await api.call("PATCH", path, body={"end": {"date": "2026-03-01"}})
    assert status == 400
    assert error_of(answer)["reason"] == "timeRangeEmpty"


async def test_patch_and_update_honour_if_match(api: Api) -> None:
    event = await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", summary="a"))
    path = f"/calendars/primary/events/{event['id']}"
    status, _ = await api.call(
        "PATCH", path, body={"summary": "b"}, headers={"If-Match": event["etag"]}
    )
    assert status == 200
    for method, body in (("PATCH", {"summary": "c"}), ("PUT", {**event, "summary": "c"})):
        status, answer = await api.call(
            method, path, body=body, headers={"If-Match": event["etag"]}
        )
        assert status == 412
        assert error_of(answer) == {
            "code": 412,
            "message": "Precondition Failed",
            "domain": "global",
            "reason": "conditionNotMet",
            "locationType": "header",
            "location": "If-Match",
        }
    status, _ = await api.call("PATCH", path, body={"summary": "d"}, headers={"If-Match": "*"})
    assert status == 200


async def test_update_replaces_the_writable_fields(api: Api) -> None:
    event = await api.insert(
        timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", summary="a", description="d")
    )
    path = f"/calendars/primary/events/{event['id']}"
    status, replaced = await api.call(
        "PUT", path, body=timed("2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z", summary="b")
    )
    assert status == 200
    assert replaced["summary"] == "b"
    assert "description" not in replaced
    assert replaced["id"] == event["id"]
    assert replaced["iCalUID"] == event["iCalUID"]
    assert replaced["sequence"] == 1
    status, answer = await api.call("PUT", path, body={"summary": "no times"})
    assert status == 400
    assert error_of(answer)["reason"] == "required"


async def test_patch_keeps_the_conference_unless_version_1(api: Api) -> None:
    body = timed(
        "2026-03-02T09:00:00Z",
        "2026-03-02T10:00:00Z",
        conferenceData={"createRequest": {"requestId": "r1"}},
    )
    event = await api.insert(body, conferenceDataVersion="1")
    path = f"/calendars/primary/events/{event['id']}"
    status, kept = await api.call("PATCH", path, body={"summary": "x", "conferenceData": None})
    assert kept["conferenceData"] == event["conferenceData"]
    status, dropped = await api.call(
        "PATCH", path, params={"conferenceDataVersion": "1"}, body={"conferenceData": None}
    )
    assert status == 200
    assert "conferenceData" not in dropped


# events.delete ------------------------------------------------------------------------------


async def test_delete_is_204_then_410_and_keeps_a_tombstone(api: Api, emulator: Emulator) -> None:
    event = await api.insert(timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"))
    path = f"/calendars/primary/events/{event['id']}"
    status, _ = await api.call("DELETE", path, headers={"If-Match": '"0"'})
    assert status == 412
    status, body = await api.call("DELETE", path)
    assert (status, body) == (204, b"")
    assert primary(emulator).events[event["id"]].cancelled
    status, again = await api.call("DELETE", path)
    assert status == 410
    assert error_of(again) == {
        "code": 410,
        "message": "Resource has been deleted",
        "domain": "global",
        "reason": "deleted",
    }
    status, _ = await api.call("DELETE", "/calendars/primary/events/nosuchevent")
    assert status == 404


async def test_write_methods_need_a_write_scope(emulator: Emulator) -> None:
    access, _ = emulator.grant(
        EMAIL, scopes=("https://www.googleapis.com/auth/calendar.events.readonly",)
    )
    async with aiohttp.ClientSession() as http:
        api = Api(http, emulator, access)
        status, _ = await api.call("GET", "/calendars/primary/events")
        assert status == 200
        status, answer = await api.call(
            "POST",
            "/calendars/primary/events",
            body=timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"),
        )
    assert status == 403
    assert error_of(answer)["reason"] == "insufficientPermissions"


@pytest.mark.parametrize(
    ("start", "end", "rules", "count"),
    [
        # A floating UNTIL of a timed event is read in the event's zone (dateutil wants UTC).
        (
            {"dateTime": "2026-03-02T09:00:00", "timeZone": "Europe/Berlin"},
            {"dateTime": "2026-03-02T10:00:00", "timeZone": "Europe/Berlin"},
            ["RRULE:FREQ=DAILY;UNTIL=20260304"],
            3,
        ),
        (
            {"dateTime": "2026-03-02T09:00:00", "timeZone": "Europe/Berlin"},
            {"dateTime": "2026-03-02T10:00:00", "timeZone": "Europe/Berlin"},
            ["RRULE:FREQ=DAILY;UNTIL=20260304T080000Z", "EXDATE:20260303T080000Z"],
            2,
        ),
        # A UTC UNTIL of an all-day event is read as a date; RDATE adds a day.
        (
            {"date": "2026-03-02"},
            {"date": "2026-03-03"},
            ["RRULE:FREQ=DAILY;UNTIL=20260303T000000Z", "RDATE;VALUE=DATE:20260310"],
            3,
        ),
    ],
)
async def test_recurrence_until_exdate_and_rdate_forms(
    api: Api, start: dict[str, str], end: dict[str, str], rules: list[str], count: int
) -> None:
    await api.insert({"start": start, "end": end, "recurrence": rules})
    assert len((await api.page(singleEvents="true"))["items"]) == count
