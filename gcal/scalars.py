"""The scalar value types of the Calendar boundary: times, dates, zones, ids and free text.

Job arguments and event writes are validated with these at the edge, so only valid values
reach :mod:`gcal.calendar_api`. Conventions:

* Strict types: ``"5"`` is not an int and ``1`` is not a bool. Times are RFC 3339 strings (or
  ``datetime``/``date`` objects from Python callers), parsed into ``datetime``/``date``.
* Free text (summary, description, location, attendee names, ``q``) has its control
  characters stripped rather than refused: it is usually pasted by people. The description
  keeps newlines and tabs; one-line fields turn them into a space (``"a\\nb"`` -> ``"a b"``).
* Event ids: :data:`NewEventId` is Google's rule for ids a client chooses (base32hex ``a-v0-9``,
  5..1024); :data:`EventId` accepts what Google hands back (letters, digits and ``_``, e.g.
  a recurring instance ``abc123_20240501T090000Z``), so ids read from Google always pass.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, StringConstraints

# RFC 3339 as Google writes it; the offset is optional here and required where noted.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# C0 and C1 control characters; the layout ones (tab, newlines) apart.
_LAYOUT = re.compile(r"[\t\n\v\f\r]+")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NEW_EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
_EVENT_ID = re.compile(r"[A-Za-z0-9_]{1,1024}")
# Longer than any IANA zone name ("America/Argentina/ComodRivadavia" is 32).
_MAX_ZONE_NAME = 64
# An entity tag travels as the If-Match header: visible ASCII and spaces (RFC 9110 §8.8.3;
# Google's are quoted digits). A control character there is a header injection.
_ETAG = re.compile(r"[\x20-\x7e]*")
# RRULE/EXRULE take no parameters; RDATE/EXDATE may (``EXDATE;TZID=Europe/Zurich:...``).
_RECURRENCE = re.compile(r"(?:RRULE:|EXRULE:|(?:RDATE|EXDATE)[;:])[\x21-\x7e]+")


def _strip_controls(value: object) -> object:
    # One line of text: a line break or tab becomes a space, other controls go.
    return _CONTROLS.sub("", _LAYOUT.sub(" ", value)) if isinstance(value, str) else value


def _strip_controls_but_layout(value: object) -> object:
    return _CONTROLS_BUT_LAYOUT.sub("", value) if isinstance(value, str) else value


def _parse_datetime(value: object) -> object:
    if isinstance(value, str):
        if not _RFC3339.fullmatch(value):
            raise ValueError("must be an RFC 3339 date-time such as 2024-05-01T09:00:00+02:00")
        return dt.datetime.fromisoformat(value)
    return value  # a datetime object is checked by the strict core schema


def _parse_date(value: object) -> object:
    if isinstance(value, dt.datetime):
        raise ValueError("must be a date (YYYY-MM-DD), not a date-time")
    if isinstance(value, str):
        if not _DATE.fullmatch(value):
            raise ValueError("must be a date such as 2024-05-01")
        return dt.date.fromisoformat(value)
    return value


def _require_offset(value: dt.datetime) -> dt.datetime:
    if value.utcoffset() is None:
        raise ValueError("must carry a UTC offset, such as 2024-05-01T09:00:00Z")
    return value


def _check_zone(value: str) -> str:
    try:
        if len(value) > _MAX_ZONE_NAME:
            raise ValueError("too long")
        ZoneInfo(value)
    # OSError: a name the file system refuses (too long for a path, say).
    except (ZoneInfoNotFoundError, ValueError, OSError) as err:
        raise ValueError("must be an IANA time zone such as Europe/Zurich") from err
    return value


def _check_calendar_id(value: str) -> str:
    if value != "primary" and (
        "/" in value or not value.isprintable() or any(c.isspace() for c in value)
    ):
        raise ValueError("must be 'primary' or a calendar id such as someone@example.com")
    return value


def _check_new_event_id(value: str) -> str:
    if not _NEW_EVENT_ID.fullmatch(value):
        raise ValueError("must be 5..1024 characters of a-v and 0-9 (base32hex)")
    return value


def _check_event_id(value: str) -> str:
    if not _EVENT_ID.fullmatch(value):
        raise ValueError("must be 1..1024 letters, digits or underscores")
    return value


def _check_etag(value: str) -> str:
    if not _ETAG.fullmatch(value):
        raise ValueError("must be an etag as Google returns it (printable ASCII)")
    return value


def _check_recurrence_line(value: str) -> str:
    if not _RECURRENCE.fullmatch(value):
        raise ValueError("must be one RRULE:, EXRULE:, RDATE: or EXDATE: line without spaces")
    return value


DateTime = Annotated[dt.datetime, BeforeValidator(_parse_datetime)]
AwareDateTime = Annotated[
    dt.datetime, AfterValidator(_require_offset), BeforeValidator(_parse_datetime)
]
Date = Annotated[dt.date, BeforeValidator(_parse_date)]
TimeZoneName = Annotated[str, AfterValidator(_check_zone)]
CalendarId = Annotated[
    str, StringConstraints(min_length=1, max_length=256), AfterValidator(_check_calendar_id)
]
EventId = Annotated[str, AfterValidator(_check_event_id)]
NewEventId = Annotated[str, AfterValidator(_check_new_event_id)]
ETag = Annotated[str, StringConstraints(max_length=200), AfterValidator(_check_etag)]

Summary = Annotated[str, StringConstraints(max_length=1024), BeforeValidator(_strip_controls)]
Description = Annotated[
    str, StringConstraints(max_length=8192), BeforeValidator(_strip_controls_but_layout)
]
Location = Summary
DisplayName = Annotated[str, StringConstraints(max_length=256), BeforeValidator(_strip_controls)]
SearchText = Annotated[str, StringConstraints(max_length=256), BeforeValidator(_strip_controls)]
RecurrenceLine = Annotated[
    str, StringConstraints(max_length=500), AfterValidator(_check_recurrence_line)
]
ColorId = Annotated[str, StringConstraints(pattern=r"^(?:[1-9]|1[01])$")]
# Google's eventType values (default, focusTime, outOfOffice, workingLocation, birthday,
# fromGmail) and any it adds later: a word, never refused for being unknown.
EventType = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{1,64}$")]
