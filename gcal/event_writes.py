"""Event writes: the validated body of an events.insert or events.patch, and what Google
must be told with it.

    write = EventInput.model_validate(args["event"]).for_insert(event_id)
    await calendar.insert_event(user_id, "primary", write, send_updates="none")

Everything Google needs decided about a write is decided here, once: the body (only the
fields set, Google's camelCase names), the event id, the conference ``requestId`` (derived
from the event id, so a retried write asks Google for the same conference, and Google ignores
the repeat) and ``conferenceDataVersion`` (1 exactly when a conference is asked for: Google
ignores ``conferenceData`` at version 0).

Python names, with Google's camelCase as aliases where the field is Google's (``dateTime``,
``timeZone``, ``useDefault``...); both spellings validate, and error locations use the aliases
so problems are named as the Calendar API names fields (``start.timeZone``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gcal.scalars import (
    ColorId,
    Date,
    DateTime,
    Description,
    DisplayName,
    Location,
    NewEventId,
    RecurrenceLine,
    Summary,
    TimeZoneName,
)


@dataclass(frozen=True, slots=True)
class EventWrite:
    """An events.insert/patch body and the ``conferenceDataVersion`` it needs (or None)."""

    body: dict[str, Any]
    conference_data_version: int | None


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

    def _write(self, event_id: str, *, with_id: bool, conference: bool) -> EventWrite:
        body = self.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"conference", "id"}
        )
        if with_id:
            body["id"] = event_id
        if not conference:
            return EventWrite(body, conference_data_version=None)
        body["conferenceData"] = {
            "createRequest": {
                # Google ignores a repeated requestId: a retried write asks only once.
                "requestId": event_id,
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        }
        return EventWrite(body, conference_data_version=1)


class EventInput(_EventFields):
    """A whole event, for create (and full update)."""

    id: NewEventId | None = Field(
        default=None, description="Accepted but not used: the id is derived from the job."
    )
    start: EventTime
    end: EventTime
    conference: bool = False

    def for_insert(self, event_id: str) -> EventWrite:
        """The events.insert request for this event under ``event_id``. A caller-given
        ``id`` is not used: the id is the job's to decide (derived from its idempotency key)."""
        return self._write(event_id, with_id=True, conference=self.conference)


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

    def for_patch(self, event_id: str) -> EventWrite:
        """The events.patch request for this change to the event ``event_id``."""
        return self._write(event_id, with_id=False, conference=bool(self.conference))
