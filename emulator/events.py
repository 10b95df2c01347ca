"""Calendar v3 ``events`` methods: list, get, insert, patch, update, delete, instances.

Handlers turn requests into changes of the :class:`~emulator.state.Store`; the rules they
apply live in :mod:`emulator.eventbody` (what a body may say), :mod:`emulator.eventquery`
(what a listing returns) and :mod:`emulator.recurrence` (instances of recurring events).
Every create, modify and delete goes through ``store.change`` so sync tokens, etags and push
notifications see it. :func:`make_event` is also the control API's door for seeding events::

    resource = make_event(calendar, {"start": {...}, "end": {...}}, now=store.clock.now())
"""

from __future__ import annotations

import json
from typing import Any

from emulator.api import READ_EVENTS, WRITE_EVENTS, ApiResponse, Call, Routes
from emulator.config import EmulatorConfig
from emulator.errors import ApiError, bad_request, gone_deleted, invalid_parameter, not_found
from emulator.eventbody import (
    check_event_id,
    client_view,
    conference,
    hangout_link,
    html_link,
    merge_patch,
    new_event_id,
    normalize,
)
from emulator.eventquery import item_json, list_events, list_instances, parse_query
from emulator.eventtime import rfc3339_ms
from emulator.recurrence import Series, check_rules, is_recurring, split_instance_id
from emulator.state import Calendar, Event, etag_for

routes = Routes()

_DEFAULT_CONFIG = EmulatorConfig()
# A change to any of these makes a new version of the event for invitees (RFC 5545 SEQUENCE).
_SEQUENCE_FIELDS = ("start", "end", "recurrence")


def make_event(
    calendar: Calendar,
    body: dict[str, Any],
    *,
    now: float,
    event_id: str | None = None,
    conference_data_version: int = 0,
    config: EmulatorConfig | None = None,
) -> dict[str, Any]:
    """Validate a client Event ``body`` as events.insert does and return the full resource.

    Raises :class:`ApiError` (400 for a bad body or id, 409 for an id the calendar holds).
    The caller stores it (``calendar.events[id] = Event(resource, ...)``, then
    ``store.change``).
    """
    config = config or _DEFAULT_CONFIG
    chosen = event_id if event_id is not None else body.get("id")
    if chosen is None:
        chosen = new_event_id()
    else:
        check_event_id(chosen)
        existing = calendar.events.get(chosen)
        if existing is not None and (
            not existing.cancelled or config.duplicate_id_includes_cancelled
        ):
            raise ApiError(409, "duplicate", "The requested identifier already exists.")
    fields = normalize(body)
    if "recurrence" in fields:
        check_rules(fields, calendar.time_zone)
    ical_uid = body.get("iCalUID")
    created = rfc3339_ms(now)
    resource = _resource(
        calendar,
        fields,
        event_id=chosen,
        created=created,
        updated=created,
        ical_uid=ical_uid if isinstance(ical_uid, str) else f"{chosen}@google.com",
        sequence=0,
    )
    data = conference(
        body.get("conferenceData"),
        None,
        enabled=conference_data_version >= 1,
        status=config.conference_create_status,
    )
    return _with_conference(resource, data)


def _resource(
    calendar: Calendar,
    fields: dict[str, Any],
    *,
    event_id: str,
    created: str,
    updated: str,
    ical_uid: str,
    sequence: int,
    instance_of: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A stored resource: the server's fields around the client's (in Google's order)."""
    creator = {"email": calendar.owner, "self": True}
    organizer = {"email": calendar.id, "self": True}
    for attendee in fields.get("attendees", []):
        if attendee["email"].lower() == calendar.owner:
            attendee["self"] = True
        if attendee["email"].lower() == calendar.id:
            attendee["organizer"] = True
    resource: dict[str, Any] = {
        "kind": "calendar#event",
        "etag": etag_for(event_id, updated),
        "id": event_id,
        "status": fields.pop("status", "confirmed"),
        "htmlLink": html_link(event_id, calendar.id),
        "created": created,
        "updated": updated,
        "creator": creator,
        "organizer": organizer,
        **fields,
    }
    if instance_of is not None:
        resource["recurringEventId"] = instance_of["recurringEventId"]
        resource["originalStartTime"] = instance_of["originalStartTime"]
    resource["iCalUID"] = ical_uid
    resource["sequence"] = sequence
    resource.setdefault("reminders", {"useDefault": True})
    resource.setdefault("eventType", "default")
    return resource


def _with_conference(resource: dict[str, Any], data: Any) -> dict[str, Any]:
    if data is not None:
        resource["conferenceData"] = data
        link = hangout_link(data)
        if link:
            resource["hangoutLink"] = link
    return resource


# --------------------------------------------------------------------------------------------
# Request parameters


def _conference_version(call: Call) -> int:
    value = call.request.query.get("conferenceDataVersion", "0")
    if value not in ("0", "1"):
        raise invalid_parameter("conferenceDataVersion")
    return int(value)


def _record_send_updates(call: Call, event_id: str) -> None:
    """Keep ``sendUpdates`` (all/externalOnly/none) where tests and the control API read it."""
    value = call.request.query.get("sendUpdates")
    if value is None:
        return
    if value not in ("all", "externalOnly", "none"):
        raise invalid_parameter("sendUpdates")
    call.store.sent_updates.append((call.name, event_id, value))


def _check_send_updates(call: Call) -> None:
    if call.request.query.get("sendUpdates", "none") not in ("all", "externalOnly", "none"):
        raise invalid_parameter("sendUpdates")


def _check_if_match(call: Call, resource: dict[str, Any]) -> None:
    wanted = call.request.headers.get("If-Match")
    if wanted is not None and wanted.strip() not in ("*", resource.get("etag")):
        raise ApiError(
            412,
            "conditionNotMet",
            "Precondition Failed",
            location="If-Match",
            location_type="header",
        )


def _find(calendar: Calendar, event_id: str) -> tuple[Event | None, dict[str, Any]]:
    """The stored event named ``event_id``, or (None, resource) for a generated instance."""
    stored = calendar.events.get(event_id)
    if stored is not None:
        return stored, stored.resource
    parts = split_instance_id(event_id)
    if parts is not None:
        master = calendar.events.get(parts[0])
        if master is not None and is_recurring(master.resource) and not master.cancelled:
            series = Series.of(calendar, master)
            original = series.original_of(parts[1])
            if original is not None:
                return None, series.instance(original)
    raise not_found()


def _json(resource: dict[str, Any]) -> ApiResponse:
    return ApiResponse(body=json.dumps(resource).encode())


def _save(call: Call, calendar: Calendar, event: Event | None, resource: dict[str, Any]) -> Event:
    """Store ``resource`` (new, or replacing ``event``'s) and record the change."""
    if event is None:
        event = Event(resource, calendar.seq)
        calendar.events[event.id] = event
    else:
        event.resource = resource
    call.store.change(calendar, event)
    return event


# --------------------------------------------------------------------------------------------
# Methods


@routes.get("/calendars/{calendarId}/events", "events.list", READ_EVENTS)
async def events_list(call: Call) -> ApiResponse:
    calendar = call.calendar()
    config = call.store.config
    query = parse_query(call.request.query, calendar, config, scope="events.list")
    return ApiResponse(body=list_events(calendar, query, config), compact=query.compact)


@routes.get("/calendars/{calendarId}/events/{eventId}", "events.get", READ_EVENTS)
async def events_get(call: Call) -> ApiResponse:
    # Cancelled events are returned too (google-api-facts §4.1, Event.status).
    event, resource = _find(call.calendar(), call.params["eventId"])
    return ApiResponse(body=item_json(event)) if event is not None else _json(resource)


@routes.post("/calendars/{calendarId}/events", "events.insert", WRITE_EVENTS, write=True)
async def events_insert(call: Call) -> ApiResponse:
    calendar = call.calendar()
    version = _conference_version(call)
    _check_send_updates(call)
    resource = make_event(
        calendar,
        call.json_body(),
        now=call.store.clock.now(),
        conference_data_version=version,
        config=call.store.config,
    )
    event = _save(call, calendar, None, resource)
    _record_send_updates(call, event.id)
    # Google answers 200, not 201 (google-api-facts §4.2).
    return ApiResponse(body=item_json(event))


async def _modify(call: Call, *, replace: bool) -> ApiResponse:
    """events.patch (``replace=False``) and events.update (``replace=True``)."""
    calendar = call.calendar()
    version = _conference_version(call)
    _check_send_updates(call)
    body = call.json_body()
    event, current = _find(calendar, call.params["eventId"])
    _check_if_match(call, current)
    instance = "recurringEventId" in current
    wanted = body if replace else merge_patch(client_view(current), body)
    fields = normalize(wanted, instance=instance)
    if "recurrence" in fields:
        check_rules(fields, calendar.time_zone)
    sequence = int(current.get("sequence", 0))
    if any(fields.get(name) != current.get(name) for name in _SEQUENCE_FIELDS):
        sequence += 1
    resource = _resource(
        calendar,
        fields,
        event_id=current["id"],
        created=current.get("created") or rfc3339_ms(call.store.clock.now()),
        updated=rfc3339_ms(call.store.clock.now()),
        ical_uid=str(current.get("iCalUID") or f"{current['id']}@google.com"),
        sequence=sequence,
        instance_of=current if instance else None,
    )
    current_data = current.get("conferenceData")
    new_data = body.get("conferenceData", current_data if not replace else None)
    data = conference(
        new_data,
        current_data,
        enabled=version >= 1,
        status=call.store.config.conference_create_status,
    )
    saved = _save(call, calendar, event, _with_conference(resource, data))
    _record_send_updates(call, saved.id)
    return ApiResponse(body=item_json(saved))


@routes.add(
    "PATCH", "/calendars/{calendarId}/events/{eventId}", "events.patch", WRITE_EVENTS, write=True
)
async def events_patch(call: Call) -> ApiResponse:
    return await _modify(call, replace=False)


@routes.add(
    "PUT", "/calendars/{calendarId}/events/{eventId}", "events.update", WRITE_EVENTS, write=True
)
async def events_update(call: Call) -> ApiResponse:
    return await _modify(call, replace=True)


@routes.add(
    "DELETE", "/calendars/{calendarId}/events/{eventId}", "events.delete", WRITE_EVENTS, write=True
)
async def events_delete(call: Call) -> ApiResponse:
    calendar = call.calendar()
    _check_send_updates(call)
    event, current = _find(calendar, call.params["eventId"])
    if event is not None and event.cancelled:
        raise gone_deleted()
    _check_if_match(call, current)
    updated = rfc3339_ms(call.store.clock.now())
    # The tombstone keeps the details (the organizer's copy does), so events.get still shows
    # them and a sync can report the deletion.
    saved = _save(call, calendar, event, {**current, "status": "cancelled", "updated": updated})
    if is_recurring(current):
        # A deleted series takes its modified instances with it.
        for other in list(calendar.events.values()):
            if other.resource.get("recurringEventId") == saved.id and not other.cancelled:
                _save(
                    call,
                    calendar,
                    other,
                    {**other.resource, "status": "cancelled", "updated": updated},
                )
    _record_send_updates(call, saved.id)
    return ApiResponse(status=204, body=b"")


@routes.get("/calendars/{calendarId}/events/{eventId}/instances", "events.instances", READ_EVENTS)
async def events_instances(call: Call) -> ApiResponse:
    calendar = call.calendar()
    config = call.store.config
    master = calendar.events.get(call.params["eventId"])
    if master is None:
        raise not_found()
    if master.cancelled:
        raise gone_deleted()
    if not is_recurring(master.resource) and config.instances_non_recurring_error:
        raise bad_request("The event is not a recurring event.", reason="invalid")
    query = parse_query(call.request.query, calendar, config, scope="events.instances")
    return ApiResponse(body=list_instances(calendar, master, query, config))
