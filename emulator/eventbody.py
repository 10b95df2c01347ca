"""Event bodies: validating what a client sends, and building patched bodies.

Owns the rules of Google's ``Event`` resource on the way in (google-api-facts §4.2): a valid
``start``/``end`` pair (see :mod:`emulator.eventtime`), recurrence presence, attendees,
reminders, ``conferenceData`` creation, client-chosen ids, patch merging, and which fields
only the server sets::

    fields = normalize(body)  # raises ApiError (400) as Google would
"""

from __future__ import annotations

import base64
import copy
import re
import secrets
import string
from typing import Any

from emulator.errors import ApiError, bad_request, required
from emulator.eventtime import parse_when

# Google's Event.id rule: base32hex characters, 5 to 1024 of them (google-api-facts §4.2).
EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")

# Fields only the server sets; a client's values for them are ignored.
SERVER_FIELDS = frozenset(
    {
        "kind",
        "etag",
        "id",
        "htmlLink",
        "created",
        "updated",
        "creator",
        "organizer",
        "hangoutLink",
        "recurringEventId",
        "originalStartTime",
        "sequence",
        "iCalUID",
    }
)
# Patch replaces these whole instead of merging them: an EventDateTime is a union of
# ``date`` and ``dateTime``, and a conference is created or kept as one piece.
_PATCH_WHOLE = frozenset({"start", "end", "conferenceData"})

MAX_REMINDER_OVERRIDES = 5
MAX_REMINDER_MINUTES = 40320


# --------------------------------------------------------------------------------------------
# Client bodies


def check_event_id(value: Any) -> str:
    if not isinstance(value, str) or not EVENT_ID.match(value):
        raise bad_request("Invalid resource id value.", reason="invalid")
    return value


def new_event_id() -> str:
    """A fresh id in Google's alphabet (base32hex, lowercase)."""
    return base64.b32hexencode(secrets.token_bytes(15)).decode().lower()


def normalize(body: dict[str, Any], *, instance: bool = False) -> dict[str, Any]:
    """The client-writable fields of ``body``, validated; raises :class:`ApiError`.

    ``conferenceData`` is left out: :func:`conference` decides it, because whether it counts
    depends on ``conferenceDataVersion`` and on the event's current conference. ``instance``
    marks a recurring-event instance, which has no ``recurrence`` of its own.
    """
    fields = {
        k: copy.deepcopy(v)
        for k, v in body.items()
        if k not in SERVER_FIELDS and k != "conferenceData"
    }
    start = parse_when(fields.get("start"), "start")
    end = parse_when(fields.get("end"), "end")
    if start.all_day != end.all_day:
        raise bad_request("Invalid start and end time combination.", reason="invalid")
    if end.moment < start.moment or (start.all_day and end.moment == start.moment):
        # all-day end.date is exclusive, so it must come after start.date.
        raise ApiError(
            400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar"
        )
    recurrence = fields.get("recurrence")
    if instance:
        fields.pop("recurrence", None)
    elif recurrence is not None:
        if not isinstance(recurrence, list) or not all(isinstance(r, str) for r in recurrence):
            raise bad_request("Invalid recurrence rule.", reason="invalid")
        if not recurrence:
            del fields["recurrence"]
        elif start.time_zone is None and not start.all_day:
            # Recurring events need start.timeZone (google-api-facts §4.2, many reports).
            raise bad_request("Missing time zone definition for start time.", reason="required")
    _check_enum(fields, "status", ("confirmed", "tentative", "cancelled"))
    _check_enum(fields, "transparency", ("opaque", "transparent"))
    _check_enum(fields, "visibility", ("default", "public", "private", "confidential"))
    _check_attendees(fields)
    _check_reminders(fields)
    _check_extended_properties(fields)
    return fields


def _check_enum(fields: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    value = fields.get(name)
    if value is not None and value not in allowed:
        raise bad_request(f"Invalid value for: {name}", reason="invalid")


def _check_attendees(fields: dict[str, Any]) -> None:
    attendees = fields.get("attendees")
    if attendees is None:
        return
    if not isinstance(attendees, list):
        raise bad_request("Invalid attendee.", reason="invalid")
    for attendee in attendees:
        if not isinstance(attendee, dict):
            raise bad_request("Invalid attendee.", reason="invalid")
        email = attendee.get("email")
        if not email or not isinstance(email, str):
            # "email: required when adding an attendee" (google-api-facts §4.2).
            raise required("attendees.email", "Missing attendee email.")
        attendee.setdefault("responseStatus", "needsAction")


def _check_reminders(fields: dict[str, Any]) -> None:
    reminders = fields.get("reminders")
    if reminders is None:
        return
    if not isinstance(reminders, dict):
        raise bad_request("Invalid reminders.", reason="invalid")
    overrides = reminders.get("overrides") or []
    if not isinstance(overrides, list):
        raise bad_request("Invalid reminders.", reason="invalid")
    if reminders.get("useDefault") and overrides:
        raise bad_request(
            "Cannot specify both default reminders and overrides at the same time.",
            reason="cannotUseDefaultRemindersAndSpecifyOverride",
        )
    if len(overrides) > MAX_REMINDER_OVERRIDES:
        raise bad_request("Too many reminders.", reason="tooManyReminders")
    for override in overrides:
        if not isinstance(override, dict) or override.get("method") not in ("email", "popup"):
            raise bad_request("Invalid reminder method.", reason="invalid")
        minutes = override.get("minutes")
        if type(minutes) is not int or not 0 <= minutes <= MAX_REMINDER_MINUTES:
            raise bad_request("Invalid reminder minutes value.", reason="invalid")


def _check_extended_properties(fields: dict[str, Any]) -> None:
    props = fields.get("extendedProperties")
    if props is None:
        return
    if not isinstance(props, dict):
        raise bad_request("Invalid extended properties.", reason="invalid")
    for scope in ("private", "shared"):
        values = props.get(scope, {})
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            raise bad_request("Invalid extended properties.", reason="invalid")


def conference(new: Any, current: Any, *, enabled: bool, status: str) -> Any:
    """The ``conferenceData`` an event ends up with (None: none).

    Only ``conferenceDataVersion=1`` lets a request change it; version 0 ignores what the
    body says (google-api-facts §4.2). A new ``createRequest`` is answered with a Meet
    conference; one already answered (or unchanged data) is kept as it is.
    """
    if not enabled or new == current:
        return current
    if not isinstance(new, dict):
        return None
    create = new.get("createRequest")
    if not isinstance(create, dict) or "status" in create:
        return copy.deepcopy(new)
    return _create_conference(create, status)


def _create_conference(create: dict[str, Any], status: str) -> dict[str, Any]:
    """Answer a ``createRequest`` with a Meet conference, as Google does for hangoutsMeet."""
    conference_id = "-".join(
        "".join(secrets.choice(string.ascii_lowercase) for _ in range(n)) for n in (3, 4, 3)
    )
    key = create.get("conferenceSolutionKey") or {"type": "hangoutsMeet"}
    created: dict[str, Any] = {
        "createRequest": {
            "requestId": create.get("requestId", ""),
            "conferenceSolutionKey": key,
            "status": {"statusCode": status},
        },
    }
    if status == "success":
        created["entryPoints"] = [
            {
                "entryPointType": "video",
                "uri": f"https://meet.google.com/{conference_id}",
                "label": f"meet.google.com/{conference_id}",
            }
        ]
        created["conferenceSolution"] = {
            "key": key,
            "name": "Google Meet",
            "iconUri": "https://fonts.gstatic.com/s/i/productlogos/meet_2020q4/v6/"
            "web-512dp/logo_meet_2020q4_color_2x_web_512dp.png",
        }
        created["conferenceId"] = conference_id
    return created


def hangout_link(conference_data: Any) -> str | None:
    """The Meet link of a created conference, as Google mirrors it into ``hangoutLink``."""
    if not isinstance(conference_data, dict):
        return None
    for entry in conference_data.get("entryPoints") or []:
        if isinstance(entry, dict) and entry.get("entryPointType") == "video":
            uri = entry.get("uri")
            return uri if isinstance(uri, str) else None
    return None


def client_view(resource: dict[str, Any]) -> dict[str, Any]:
    """The client-writable part of a stored resource (what a patch merges into)."""
    return {k: v for k, v in resource.items() if k not in SERVER_FIELDS}


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Google's patch semantics: given fields replace, objects merge, arrays and
    ``start``/``end``/``conferenceData`` are replaced whole, ``null`` clears a field."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif (
            isinstance(value, dict)
            and isinstance(merged.get(key), dict)
            and key not in _PATCH_WHOLE
        ):
            merged[key] = merge_patch(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def html_link(event_id: str, calendar_id: str) -> str:
    eid = base64.urlsafe_b64encode(f"{event_id} {calendar_id}".encode()).decode().rstrip("=")
    return f"https://www.google.com/calendar/event?eid={eid}"
