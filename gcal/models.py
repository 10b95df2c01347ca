"""Validated inputs for Calendar work: event writes and event-list queries.

The job layer validates its arguments (JSON from Redis) with these models at the boundary, so
only valid values reach :mod:`gcal.calendar_api`; each model then speaks Google's dialect::

    try:
        event = EventInput.model_validate(args["event"])
    except ValidationError as err:
        raise invalid_request(err) from err          # "invalid input: end: must be after start"
    created = await client.insert_event(
        user_id, "primary", event.to_google(),
        conference_data_version=event.conference_data_version,
    )
    page = await client.list_events(user_id, "primary", EventQuery.model_validate(args["query"]))

Conventions:

* Python names, with Google's camelCase as aliases where the field is Google's (``dateTime``,
  ``timeZone``, ``useDefault``...); both spellings validate. Error locations use the aliases,
  so :func:`invalid_request` names fields as the Calendar API does (``start.timeZone``).
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

import base64
import datetime as dt
import re
import secrets
import uuid
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gcal.errors import InvalidRequest

# RFC 3339 as Google writes it; the offset is optional here and required where noted.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# C0 and C1 control characters; the layout ones (tab, newlines) apart.
_LAYOUT = re.compile(r"[\t\n\v\f\r]+")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_LAYOUT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_NEW_EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
_EVENT_ID = re.compile(r"[A-Za-z0-9_]{1,1024}")
# RRULE/EXRULE take no parameters; RDATE/EXDATE may (``EXDATE;TZID=Europe/Zurich:...``).
_RECURRENCE = re.compile(r"(?:RRULE:|EXRULE:|(?:RDATE|EXDATE)[;:])[\x21-\x7e]+")


# Scalar types -------------------------------------------------------------------------------


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
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
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


def new_event_id() -> str:
    """A fresh event id in Google's alphabet, for an insert that may be retried."""
    return base64.b32hexencode(secrets.token_bytes(20)).decode().lower()


# Events -------------------------------------------------------------------------------------


# Each model spells its ConfigDict out (extra="forbid", strict, aliases or names, frozen):
# the pydantic mypy plugin reads a literal ConfigDict only, not a shared constant.


class EventTime(BaseModel):
    """An event's start or end: a ``date`` (all-day) or a ``dateTime``."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)

    date: Date | None = None
    date_time: DateTime | None = Field(default=None, alias="dateTime")
    time_zone: TimeZoneName | None = Field(default=None, alias="timeZone")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.date is None) == (self.date_time is None):
            raise ValueError("set exactly one of date or dateTime")
        if self.date is not None and self.time_zone is not None:
            raise ValueError("timeZone applies to dateTime only (a date is all-day)")
        if self.date_time is not None and self.date_time.tzinfo is None and not self.time_zone:
            raise ValueError("dateTime needs a UTC offset or a timeZone")
        return self

    @property
    def all_day(self) -> bool:
        return self.date is not None

    def moment(self) -> dt.datetime | None:
        """The aware moment of a timed start/end (a local time placed in ``time_zone``);
        None for an all-day date."""
        if self.date_time is not None and self.date_time.tzinfo is None and self.time_zone:
            return self.date_time.replace(tzinfo=ZoneInfo(self.time_zone))
        return self.date_time

    def to_google(self) -> dict[str, Any]:
        """Google's ``EventDateTime``."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class Attendee(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)

    email: EmailStr
    display_name: DisplayName | None = Field(default=None, alias="displayName")
    optional: bool = False


class ReminderOverride(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)

    method: Literal["email", "popup"]
    minutes: int = Field(ge=0, le=40320)


class Reminders(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)

    use_default: bool = Field(default=False, alias="useDefault")
    overrides: list[ReminderOverride] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _default_or_overrides(self) -> Self:
        if self.use_default and self.overrides:
            raise ValueError("useDefault and overrides cannot both be set")
        return self


class _EventFields(BaseModel):
    """The writable Event fields shared by :class:`EventInput` and :class:`EventPatch`."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True, frozen=True)

    summary: Summary | None = None
    description: Description | None = None
    location: Location | None = None
    start: EventTime | None = None
    end: EventTime | None = None
    attendees: list[Attendee] | None = Field(default=None, max_length=100)
    reminders: Reminders | None = None
    recurrence: list[RecurrenceLine] | None = Field(default=None, max_length=20)
    visibility: Literal["default", "public", "private", "confidential"] | None = None
    transparency: Literal["opaque", "transparent"] | None = None
    color_id: ColorId | None = Field(default=None, alias="colorId")

    # The conference ``requestId`` when the event has no id of its own to derive it from.
    _request_id: str = PrivateAttr(default_factory=lambda: uuid.uuid4().hex)

    @field_validator("end")
    @classmethod
    def _end_after_start(cls, end: EventTime | None, info: ValidationInfo) -> EventTime | None:
        start = info.data.get("start")
        if end is None or start is None:
            return end
        if start.all_day != end.all_day:
            raise ValueError("start and end must both be dates or both be dateTimes")
        if start.date is not None and end.date is not None:
            empty = end.date <= start.date
        else:
            start_at, end_at = start.moment(), end.moment()
            empty = start_at is not None and end_at is not None and end_at <= start_at
        if empty:
            raise ValueError("must be after start (an all-day end date is exclusive)")
        return end

    @field_validator("attendees")
    @classmethod
    def _distinct_attendees(cls, attendees: list[Attendee] | None) -> list[Attendee] | None:
        emails = [a.email.lower() for a in attendees or ()]
        if len(set(emails)) != len(emails):
            raise ValueError("lists an attendee twice")
        return attendees

    @field_validator("recurrence")
    @classmethod
    def _recurrence_zone(cls, lines: list[str] | None, info: ValidationInfo) -> list[str] | None:
        start = info.data.get("start")
        # Google: "Missing time zone definition for start time." for a timed series.
        if lines and start is not None and not start.all_day and not start.time_zone:
            raise ValueError("a recurring event needs start.timeZone")
        return lines

    def _google(self, *, event_id: str | None, conference: bool) -> dict[str, Any]:
        body = self.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"conference", "id"}
        )
        if event_id is not None:
            body["id"] = event_id
        if conference:
            body["conferenceData"] = {
                "createRequest": {
                    # Google ignores a repeated requestId: a retried insert asks only once.
                    "requestId": event_id or self._request_id,
                    "conferenceSolutionKey": {"type": "hangoutsMeet"},
                }
            }
        return body


class EventInput(_EventFields):
    """A whole event, for create (and full update)."""

    id: NewEventId | None = None
    start: EventTime
    end: EventTime
    conference: bool = False

    def to_google(self) -> dict[str, Any]:
        """Google's Event body, with only the fields that are set."""
        return self._google(event_id=self.id, conference=self.conference)

    @property
    def conference_data_version(self) -> int | None:
        """What to pass as ``conferenceDataVersion``: 1 when a Meet link is asked for."""
        return 1 if self.conference else None


class EventPatch(_EventFields):
    """A partial event change: every field optional, at least one set.

    ``conference: true`` adds a Meet link; removing one is not offered. A ``recurrence``
    without ``start`` cannot be checked for ``start.timeZone`` here (Google checks it).
    """

    conference: Literal[True] | None = None

    @model_validator(mode="after")
    def _something_and_whole_times(self) -> Self:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("change at least one field")
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end must be changed together")
        return self

    def to_google(self) -> dict[str, Any]:
        """Google's patch body, with only the fields that are set."""
        return self._google(event_id=None, conference=bool(self.conference))

    @property
    def conference_data_version(self) -> int | None:
        """What to pass as ``conferenceDataVersion``: 1 when a Meet link is asked for."""
        return 1 if self.conference else None


# Queries ------------------------------------------------------------------------------------

# events.list parameters a sync token may not be combined with (google-api-facts §4.1).
_SYNC_FORBIDDEN = {"time_min": "timeMin", "time_max": "timeMax", "q": "q", "order_by": "orderBy"}


class EventQuery(BaseModel):
    """What an events.list call asks for (one page's size; paging is the client's)."""

    # Snake case only: these are job arguments; to_params() speaks Google's names.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    time_min: AwareDateTime | None = None
    time_max: AwareDateTime | None = None
    q: SearchText | None = None
    single_events: bool = True
    order_by: Literal["startTime", "updated"] | None = None
    time_zone: TimeZoneName | None = None
    max_results: int = Field(default=250, ge=1, le=2500)
    show_deleted: bool = False

    @field_validator("time_max")
    @classmethod
    def _range_not_empty(
        cls, time_max: dt.datetime | None, info: ValidationInfo
    ) -> dt.datetime | None:
        time_min = info.data.get("time_min")
        if time_max is not None and time_min is not None and time_max <= time_min:
            raise ValueError("must be after time_min")
        return time_max

    @field_validator("order_by")
    @classmethod
    def _ordering_available(cls, order_by: str | None, info: ValidationInfo) -> str | None:
        if order_by == "startTime" and not info.data.get("single_events", True):
            raise ValueError("startTime ordering needs single_events")
        return order_by

    def sync_conflicts(self) -> list[str]:
        """The set parameters Google refuses next to a ``syncToken`` (their Google names)."""
        return [alias for name, alias in _SYNC_FORBIDDEN.items() if getattr(self, name)]

    def to_params(self) -> dict[str, str]:
        """The events.list query parameters."""
        params = {
            "singleEvents": "true" if self.single_events else "false",
            "maxResults": str(self.max_results),
        }
        if self.time_min is not None:
            params["timeMin"] = self.time_min.isoformat()
        if self.time_max is not None:
            params["timeMax"] = self.time_max.isoformat()
        if self.q:
            params["q"] = self.q
        if self.order_by is not None:
            params["orderBy"] = self.order_by
        if self.time_zone is not None:
            params["timeZone"] = self.time_zone
        if self.show_deleted:
            # Only ever sent as true: with a sync token Google refuses showDeleted=false.
            params["showDeleted"] = "true"
        return params


# Validation errors --------------------------------------------------------------------------


def validation_problems(err: ValidationError) -> list[dict[str, str]]:
    """``[{"field": "start.timeZone", "problem": "..."}]``, without the rejected values."""
    problems = []
    for item in err.errors(include_url=False, include_input=False, include_context=False):
        field = ".".join(str(part) for part in item["loc"])
        problem = item["msg"].removeprefix("Value error, ")
        problems.append({"field": field, "problem": problem})
    return problems


def invalid_request(err: ValidationError) -> InvalidRequest:
    """The :class:`InvalidRequest` for a failed validation, naming every bad field."""
    parts = [
        f"{p['field']}: {p['problem']}" if p["field"] else p["problem"]
        for p in validation_problems(err)
    ]
    return InvalidRequest("invalid input: " + "; ".join(parts))
