"""The wire contract: every job's name, its JSON arguments and its result data.

A job is enqueued by name on the queue ``<prefix>:queue`` with its arguments as a JSON
object; its result (:class:`jobs.results.JobResult`, with ``data`` shaped by the job's
``*Data`` model here) is written to ``<prefix>:result:<job_id>`` and then announced. JSON
Schemas generated from these models are checked in under ``docs/schemas/``
(``python -m jobs write-schemas``); ``docs/contract.md`` explains them.

Events in results are Google Calendar v3 Event resources, passed through as Google sent them
(not re-validated item by item: pages of 250 events stay cheap).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from gcal.keys import USER_ID_RE
from gcal.models import CalendarId, EventId, EventInput, EventPatch, EventQuery, TimeZoneName

UserId = Field(pattern=f"^{USER_ID_RE.pattern}$", min_length=1, max_length=128)
SendUpdates = Literal["all", "externalOnly", "none"]

# Fields a get_events caller gets with projection "basic" (Google's `fields` syntax).
BASIC_EVENT_FIELDS = (
    "id,status,summary,location,start,end,recurringEventId,originalStartTime,"
    "updated,etag,htmlLink,attendees(email,responseStatus),organizer(email)"
)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    user_id: str = UserId


# get_events ---------------------------------------------------------------------------------


class GetEventsArgs(_Args, EventQuery):
    """Events of one calendar in a time window (recurring events expanded by default)."""

    calendar_id: CalendarId = "primary"
    max_events: int = Field(
        default=250, ge=1, le=10_000, description="Stop after this many events (then truncated)."
    )
    projection: Literal["full", "basic"] = Field(
        default="full", description="basic: only the commonly needed fields of each event."
    )


class GetEventsData(BaseModel):
    events: list[dict[str, Any]] = Field(description="Google Calendar v3 Event resources.")
    truncated: bool = Field(description="True when max_events or the page cap cut the list.")
    time_zone: str | None = None


# create_event / update_event / delete_event -----------------------------------------------------


class CreateEventArgs(_Args):
    """Create an event, exactly once per idempotency key, however often the job runs."""

    calendar_id: CalendarId = "primary"
    event: EventInput
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Same key, same event: defaults to the job id.",
    )
    send_updates: SendUpdates = "none"


class CreateEventData(BaseModel):
    event: dict[str, Any] = Field(description="The Google Calendar v3 Event resource.")
    created: bool = Field(description="False when an earlier run had already created it.")


class UpdateEventArgs(_Args):
    """Change some fields of an event; with ``etag``, only if it is still that version."""

    calendar_id: CalendarId = "primary"
    event_id: EventId
    patch: EventPatch
    etag: str | None = Field(default=None, max_length=200)
    send_updates: SendUpdates = "none"


class UpdateEventData(BaseModel):
    event: dict[str, Any]


class DeleteEventArgs(_Args):
    """Delete an event; deleting one already gone succeeds (``already_deleted``)."""

    calendar_id: CalendarId = "primary"
    event_id: EventId
    etag: str | None = Field(default=None, max_length=200)
    send_updates: SendUpdates = "none"


class DeleteEventData(BaseModel):
    already_deleted: bool


# list_calendars / get_free_busy / disconnect ------------------------------------------------------


class ListCalendarsArgs(_Args):
    """The user's calendar list."""


class ListCalendarsData(BaseModel):
    calendars: list[dict[str, Any]] = Field(description="Google calendarList entries.")


class GetFreeBusyArgs(_Args):
    """Busy intervals of up to 50 calendars in a window."""

    time_min: AwareDatetime
    time_max: AwareDatetime
    calendar_ids: list[CalendarId] = Field(
        default_factory=lambda: ["primary"], min_length=1, max_length=50
    )
    time_zone: TimeZoneName | None = None

    @model_validator(mode="after")
    def _window(self) -> GetFreeBusyArgs:
        if self.time_max <= self.time_min:
            raise ValueError("time_max must be after time_min")
        if self.time_max - self.time_min > dt.timedelta(days=62):
            raise ValueError("the window may span at most 62 days")
        return self


class GetFreeBusyData(BaseModel):
    calendars: dict[str, Any] = Field(description="Google freeBusy 'calendars' map.")


class DisconnectArgs(_Args):
    """Revoke the user's grant at Google and forget everything kept for the user."""


class DisconnectData(BaseModel):
    was_linked: bool


# Job names and their models, for producers and the schema generator (the worker's registry
# pairs them with the job functions).
ARGUMENTS: dict[str, type[BaseModel]] = {
    "get_events": GetEventsArgs,
    "create_event": CreateEventArgs,
    "update_event": UpdateEventArgs,
    "delete_event": DeleteEventArgs,
    "list_calendars": ListCalendarsArgs,
    "get_free_busy": GetFreeBusyArgs,
    "disconnect": DisconnectArgs,
}
DATA: dict[str, type[BaseModel]] = {
    "get_events": GetEventsData,
    "create_event": CreateEventData,
    "update_event": UpdateEventData,
    "delete_event": DeleteEventData,
    "list_calendars": ListCalendarsData,
    "get_free_busy": GetFreeBusyData,
    "disconnect": DisconnectData,
}
