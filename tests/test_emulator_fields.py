"""Partial responses (the ``fields`` parameter) over real HTTP, plus the parser's edge cases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from emulator.eventquery import item_json
from emulator.fields import FieldsError, parse
from gcal.event_queries import BASIC_EVENT_FIELDS
from tests.conftest import MakeEmulator
from tests.harness import CALENDAR, CalendarApi, Emulator

EMAIL = "alice@example.com"
EVENTS = "/calendars/primary/events"
TIMED = {
    "summary": "Planning",
    "location": "Room 1",
    "description": "Agenda",
    "start": {"dateTime": "2026-03-02T09:00:00+01:00", "timeZone": "Europe/Berlin"},
    "end": {"dateTime": "2026-03-02T10:00:00+01:00", "timeZone": "Europe/Berlin"},
    "attendees": [{"email": "bob@example.com", "displayName": "Bob", "optional": True}],
}
ALL_DAY = {"summary": "Holiday", "start": {"date": "2026-03-03"}, "end": {"date": "2026-03-04"}}


async def open_api(emulator: Emulator) -> AsyncIterator[CalendarApi]:
    access, _ = emulator.grant(EMAIL, scopes=(CALENDAR,))
    async with aiohttp.ClientSession() as http:
        yield CalendarApi(http, emulator, access)


@pytest.fixture
async def api(emulator: Emulator) -> AsyncIterator[CalendarApi]:
    async for client in open_api(emulator):
        yield client


@pytest.fixture
async def strict_api(make_emulator: MakeEmulator) -> AsyncIterator[CalendarApi]:
    async for client in open_api(await make_emulator(fields_unknown_error=True)):
        yield client


def error_of(body: Any) -> dict[str, Any]:
    error = body["error"]
    return {"code": error["code"], "status": error["status"], **error["errors"][0]}


def invalid_fields(message: str) -> dict[str, Any]:
    return {
        "code": 400,
        "status": "INVALID_ARGUMENT",
        "domain": "global",
        "reason": "invalidParameter",
        "message": message,
        "locationType": "parameter",
        "location": "fields",
    }


# events.list --------------------------------------------------------------------------------


async def test_nested_selection_applies_to_every_item(api: CalendarApi) -> None:
    timed = await api.insert(TIMED)
    all_day = await api.insert(ALL_DAY)
    page = await api.ok("GET", EVENTS, params={"fields": "items(id,start/dateTime)"})
    assert page == {
        "items": [
            {"id": e["id"], "start": {"dateTime": e["start"]["dateTime"]}}
            if e is timed
            # An all-day event's start holds no dateTime: the object stays, empty [I].
            else {"id": e["id"], "start": {}}
            for e in sorted((timed, all_day), key=lambda e: e["id"])
        ]
    }


async def test_page_token_and_ids_across_pages(api: CalendarApi) -> None:
    ids = sorted([(await api.insert(TIMED))["id"] for _ in range(3)])
    params = {"fields": "nextPageToken,items(id)", "maxResults": "2"}
    first = await api.ok("GET", EVENTS, params=params)
    assert set(first) == {"items", "nextPageToken"}
    last = await api.ok("GET", EVENTS, params={**params, "pageToken": first["nextPageToken"]})
    # The last page has a nextSyncToken, but it was not selected.
    assert last == {"items": [{"id": ids[2]}]}
    assert first["items"] == [{"id": ids[0]}, {"id": ids[1]}]


async def test_the_products_basic_projection(api: CalendarApi) -> None:
    await api.insert(TIMED)
    await api.insert(ALL_DAY)
    basic = f"nextPageToken,nextSyncToken,timeZone,items({BASIC_EVENT_FIELDS})"
    page = await api.ok("GET", EVENTS, params={"fields": basic})
    assert set(page) == {"nextSyncToken", "timeZone", "items"}
    allowed = set(parse(BASIC_EVENT_FIELDS))
    assert len(page["items"]) == 2
    for item in page["items"]:
        assert set(item) <= allowed, set(item) - allowed
        assert {"id", "status", "start", "end", "updated", "etag", "htmlLink"} <= set(item)
        assert item["organizer"] == {"email": EMAIL}
    timed = next(i for i in page["items"] if i["summary"] == "Planning")
    assert timed["location"] == "Room 1"
    assert timed["start"] == TIMED["start"]  # selected whole
    assert timed["attendees"] == [{"email": "bob@example.com", "responseStatus": "needsAction"}]


async def test_without_fields_the_page_is_the_cached_items_unchanged(
    api: CalendarApi, emulator: Emulator
) -> None:
    created = await api.insert(TIMED)
    status, raw = await api.raw("GET", EVENTS)
    assert status == 200
    calendar = emulator.store.calendar(emulator.store.account(EMAIL), "primary")
    assert calendar is not None
    assert item_json(calendar.events[created["id"]]) in raw  # the fast path's bytes, verbatim
    page = json.loads(raw)
    assert page["items"] == [created]
    assert {"kind", "etag", "summary", "updated", "timeZone", "nextSyncToken"} <= set(page)


@pytest.mark.parametrize("fields", [None, "items(id,summary),nextSyncToken"])
async def test_pretty_print_false_answers_without_whitespace(
    api: CalendarApi, fields: str | None
) -> None:
    """Google's ``prettyPrint`` (default true) indents; ``false`` answers in compact JSON."""
    await api.insert(TIMED)
    params = {} if fields is None else {"fields": fields}
    _, spaced = await api.raw("GET", EVENTS, params=params)
    _, compact = await api.raw("GET", EVENTS, params={**params, "prettyPrint": "false"})
    page = json.loads(compact)
    assert compact == json.dumps(page, separators=(",", ":")).encode()
    assert page == json.loads(spaced)
    assert spaced != compact


async def test_wildcards(api: CalendarApi) -> None:
    created = await api.insert(TIMED)
    full = await api.ok("GET", EVENTS)
    assert await api.ok("GET", EVENTS, params={"fields": "*"}) == full
    assert await api.ok("GET", EVENTS, params={"fields": "items/*"}) == {"items": [created]}
    # A wildcard with a sub-selection: every field, and inside each the selected names.
    assert await api.ok("GET", EVENTS, params={"fields": "items(*/dateTime)"}) == {
        "items": [
            {
                "start": {"dateTime": created["start"]["dateTime"]},
                "end": {"dateTime": created["end"]["dateTime"]},
                # Objects without a dateTime stay (empty); strings and lists drop out.
                "creator": {},
                "organizer": {},
                "attendees": [{}],
                "reminders": {},
            }
        ]
    }


# Other methods ------------------------------------------------------------------------------


async def test_events_get_path_selection(api: CalendarApi) -> None:
    created = await api.insert(TIMED)
    path = f"{EVENTS}/{created['id']}"
    got = await api.ok("GET", path, params={"fields": "start/dateTime"})
    assert got == {"start": {"dateTime": "2026-03-02T09:00:00+01:00"}}
    both = await api.ok("GET", path, params={"fields": "id,start(timeZone),start/dateTime"})
    assert both == {"id": created["id"], "start": TIMED["start"]}
    assert await api.ok("GET", path, params={"fields": "start/*,id"}) == {
        "id": created["id"],
        "start": TIMED["start"],
    }


async def test_writes_answer_with_the_selection(api: CalendarApi, emulator: Emulator) -> None:
    created = await api.ok("POST", EVENTS, body=TIMED, params={"fields": "id,summary"})
    assert set(created) == {"id", "summary"}
    patched = await api.ok(
        "PATCH", f"{EVENTS}/{created['id']}", body={"summary": "B"}, params={"fields": "summary"}
    )
    assert patched == {"summary": "B"}
    status, raw = await api.raw("DELETE", f"{EVENTS}/{created['id']}", params={"fields": "id"})
    assert (status, raw) == (204, b"")


async def test_map_keys_are_selected_like_fields(api: CalendarApi) -> None:
    await api.insert(TIMED)
    body = {
        "timeMin": "2026-03-02T00:00:00Z",
        "timeMax": "2026-03-03T00:00:00Z",
        "items": [{"id": EMAIL}, {"id": "nobody@example.com"}],
    }
    busy = {"busy": [{"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T09:00:00Z"}]}
    result = await api.ok("POST", "/freeBusy", body=body, params={"fields": f"calendars/{EMAIL}"})
    assert result == {"calendars": {EMAIL: busy}}
    result = await api.ok("POST", "/freeBusy", body=body, params={"fields": "calendars/*/busy"})
    assert result == {"calendars": {EMAIL: busy, "nobody@example.com": {"busy": []}}}


async def test_calendar_list_and_calendar(api: CalendarApi) -> None:
    listed = await api.ok("GET", "/users/me/calendarList", params={"fields": "items(id,primary)"})
    assert listed == {"items": [{"id": EMAIL, "primary": True}]}
    got = await api.ok("GET", "/calendars/primary", params={"fields": "id,timeZone"})
    assert set(got) == {"id", "timeZone"}


# Errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "items(id",
        "items(id))",
        "items()",
        "items(id,)",
        ",id",
        "id,",
        "start//dateTime",
        "items(id, summary)",
        "id summary",
        "items*",
        "*id",
        "items(id)summary",
    ],
)
async def test_invalid_syntax_is_a_400(api: CalendarApi, expression: str) -> None:
    status, body = await api.call("GET", EVENTS, params={"fields": expression})
    assert status == 400
    assert error_of(body) == invalid_fields(f"Invalid field selection {expression}")
    assert body["error"]["message"] == f"Invalid field selection {expression}"


async def test_an_invalid_selection_fails_a_write_before_it_is_made(
    api: CalendarApi, emulator: Emulator
) -> None:
    status, body = await api.call("POST", EVENTS, body=TIMED, params={"fields": "id("})
    assert status == 400, body
    assert error_of(body)["reason"] == "invalidParameter"
    calendar = emulator.store.calendar(emulator.store.account(EMAIL), "primary")
    assert calendar is not None
    assert calendar.events == {}


async def test_error_responses_are_not_projected(api: CalendarApi) -> None:
    status, body = await api.call("GET", f"{EVENTS}/missing", params={"fields": "id"})
    assert status == 404
    assert error_of(body)["reason"] == "notFound"


async def test_unknown_names_are_absent_by_default(api: CalendarApi) -> None:
    created = await api.insert(TIMED)
    page = await api.ok("GET", EVENTS, params={"fields": "items(id,bogus),nothing,summary/x"})
    assert page == {"items": [{"id": created["id"]}]}


async def test_unknown_names_can_be_an_error(strict_api: CalendarApi) -> None:
    created = await strict_api.insert(ALL_DAY)
    status, body = await strict_api.call("GET", EVENTS, params={"fields": "items(id,bogus)"})
    assert status == 400
    assert error_of(body) == invalid_fields("Invalid field selection bogus")
    status, body = await strict_api.call(
        "GET", f"{EVENTS}/{created['id']}", params={"fields": "summary/x"}
    )
    assert (status, error_of(body)["message"]) == (400, "Invalid field selection x")
    # Known fields the response does not hold are no error; map keys are any name.
    page = await strict_api.ok("GET", EVENTS, params={"fields": "items(id,description)"})
    assert page == {"items": [{"id": created["id"]}]}
    basic = f"nextPageToken,nextSyncToken,timeZone,items({BASIC_EVENT_FIELDS})"
    assert (await strict_api.ok("GET", EVENTS, params={"fields": basic}))["items"]
    fb = {"timeMin": "2026-03-02T00:00:00Z", "timeMax": "2026-03-03T00:00:00Z"}
    fb_fields = {"fields": "calendars/anyone@example.com/busy,kind"}
    assert await strict_api.ok("POST", "/freeBusy", body=fb, params=fb_fields) == {
        "kind": "calendar#freeBusy",
        "calendars": {},
    }


# The parser ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "selection"),
    [
        ("a", {"a": {}}),
        ("a/b/c", {"a": {"b": {"c": {}}}}),
        ("a(b,c/d)", {"a": {"b": {}, "c": {"d": {}}}}),
        ("a/b(c),a/d", {"a": {"b": {"c": {}}, "d": {}}}),
        ("a/b,a", {"a": {}}),  # selecting a whole absorbs its sub-selections
        ("a,a(b)", {"a": {}}),
        ("*,a/b", {"*": {}, "a": {"b": {}}}),
        ("a(*)", {"a": {"*": {}}}),
        ("calendars/x@y.example/busy", {"calendars": {"x@y.example": {"busy": {}}}}),
    ],
)
def test_parse(expression: str, selection: dict[str, Any]) -> None:
    assert parse(expression) == selection


def test_parse_errors_say_where() -> None:
    with pytest.raises(FieldsError, match=r"expected '\)' at position 8") as caught:
        parse("items(id")
    assert caught.value.message == "Invalid field selection items(id"
    with pytest.raises(FieldsError, match="whitespace is not allowed at position 3"):
        parse("id, summary")
