"""Calendar v3 methods about calendars themselves: calendarList.list, calendars.get and
freebusy.query.

Every account owns its calendars (``accessRole: owner``); the primary calendar's id is the
account's email. Free/busy is computed from the caller's own calendars: confirmed and tentative
events that are not ``transparent``, recurring instances included, merged into busy periods.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from emulator.api import FREEBUSY, READ_CALENDAR_LIST, READ_CALENDARS, ApiResponse, Call, Routes
from emulator.errors import bad_request, required, time_range_empty
from emulator.eventquery import DEFAULT_REMINDERS
from emulator.eventtime import parse_rfc3339, rfc3339_ms, span, zone
from emulator.recurrence import Series, is_recurring
from emulator.state import Calendar, etag_for

routes = Routes()

_CONFERENCE_PROPERTIES = {"allowedConferenceSolutionTypes": ["hangoutsMeet"]}
_PRIMARY_NOTIFICATIONS = {
    "notifications": [
        {"type": "eventCreation", "method": "email"},
        {"type": "eventChange", "method": "email"},
        {"type": "eventCancellation", "method": "email"},
        {"type": "eventResponse", "method": "email"},
    ]
}


def _calendar_resource(calendar: Calendar) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "kind": "calendar#calendar",
        "etag": etag_for("calendar", calendar.id, calendar.summary, calendar.time_zone),
        "id": calendar.id,
        "summary": calendar.summary,
    }
    if calendar.description:
        resource["description"] = calendar.description
    resource["timeZone"] = calendar.time_zone
    resource["conferenceProperties"] = _CONFERENCE_PROPERTIES
    return resource


def _list_entry(calendar: Calendar) -> dict[str, Any]:
    entry = _calendar_resource(calendar)
    entry["kind"] = "calendar#calendarListEntry"
    entry.update(
        {
            "colorId": "14" if calendar.primary else "7",
            "backgroundColor": "#9fe1e7" if calendar.primary else "#42d692",
            "foregroundColor": "#000000",
            "selected": True,
            "accessRole": "owner",
            "defaultReminders": list(DEFAULT_REMINDERS) if calendar.primary else [],
        }
    )
    if calendar.primary:
        entry["notificationSettings"] = _PRIMARY_NOTIFICATIONS
        entry["primary"] = True
    return entry


@routes.get("/users/me/calendarList", "calendarList.list", READ_CALENDAR_LIST)
async def calendar_list(call: Call) -> ApiResponse:
    calendars = sorted(call.account.calendars.values(), key=lambda c: (not c.primary, c.id))
    items = [_list_entry(c) for c in calendars]
    body = {
        "kind": "calendar#calendarList",
        "etag": etag_for("calendarList", *(i["etag"] for i in items)),
        "nextSyncToken": etag_for("calendarList", len(items)).strip('"'),
        "items": items,
    }
    return ApiResponse(body=json.dumps(body).encode())


@routes.get("/calendars/{calendarId}", "calendars.get", READ_CALENDARS)
async def calendars_get(call: Call) -> ApiResponse:
    return ApiResponse(body=json.dumps(_calendar_resource(call.calendar())).encode())


# --------------------------------------------------------------------------------------------
# Free/busy


def _bound(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if value is None:
        raise required(name, f"Missing {name}.")
    parsed = parse_rfc3339(value) if isinstance(value, str) else None
    if parsed is None:
        raise bad_request("Bad Request", location=name)
    return parsed


def _busy(call: Call, calendar: Calendar, low: float, high: float) -> list[tuple[float, float]]:
    """Merged busy periods of ``calendar`` overlapping [low, high)."""
    periods: list[tuple[float, float]] = []
    limit = call.store.config.recurrence_max_instances
    events = calendar.events
    for event in events.values():
        resource = event.resource
        if event.cancelled or resource.get("transparency") == "transparent":
            continue
        if is_recurring(resource):
            series = Series.of(calendar, event)
            for original in series.originals(after=low, before=high, limit=limit):
                if series.instance_id(original) in events:
                    continue  # the stored exception counts on its own
                start = series.timestamp(original)
                periods.append((start, start + series.duration.total_seconds()))
            continue
        start, end = span(event, calendar.time_zone)
        if start < high and end > low and end > start:
            periods.append((start, end))
    if call.store.config.freebusy_clip_to_window:
        periods = [(max(s, low), min(e, high)) for s, e in periods]
    merged: list[tuple[float, float]] = []
    for start, end in sorted(periods):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _format(ts: float, time_zone: str) -> str:
    moment = datetime.fromtimestamp(ts, zone(time_zone) or UTC)
    text = moment.isoformat()
    return text.removesuffix("+00:00") + "Z" if time_zone == "UTC" else text


@routes.post("/freeBusy", "freebusy.query", FREEBUSY)
async def freebusy_query(call: Call) -> ApiResponse:
    body = call.json_body()
    low, high = _bound(body, "timeMin"), _bound(body, "timeMax")
    if high <= low:
        raise time_range_empty()
    time_zone = body.get("timeZone") or "UTC"
    if not isinstance(time_zone, str) or zone(time_zone) is None:
        raise bad_request("Invalid time zone definition.", reason="invalid", location="timeZone")
    items = body.get("items") or []
    if not isinstance(items, list):
        raise bad_request("Invalid items.", reason="invalid", location="items")
    calendars: dict[str, Any] = {}
    for item in items:
        calendar_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(calendar_id, str):
            raise required("items.id", "Missing calendar id.")
        calendar = call.store.calendar(call.account, calendar_id)
        if calendar is None:
            calendars[calendar_id] = {
                "errors": [{"domain": "global", "reason": "notFound"}],
                "busy": [],
            }
            continue
        calendars[calendar_id] = {
            "busy": [
                {"start": _format(s, time_zone), "end": _format(e, time_zone)}
                for s, e in _busy(call, calendar, low, high)
            ]
        }
    result = {
        "kind": "calendar#freeBusy",
        "timeMin": rfc3339_ms(low),
        "timeMax": rfc3339_ms(high),
        "calendars": calendars,
    }
    return ApiResponse(body=json.dumps(result).encode())
