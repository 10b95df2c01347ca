"""What an events.list call asks for, validated, and spoken as Google's query parameters.

    query = EventQuery(time_min=..., time_max=..., single_events=True)
    page = await calendar.list_events(user_id, "primary", query, page_token=None)

Snake case only: these are job arguments (``get_events`` extends the model);
:meth:`EventQuery.to_params` speaks Google's names.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gcal.scalars import AwareDateTime, EventType, SearchText, TimeZoneName

# The fields of an event in the "basic" projection (Google's `fields` syntax): what most
# callers need, a fraction of the bytes. eventType is kept so every type passes through.
BASIC_EVENT_FIELDS = (
    "id,status,eventType,summary,location,start,end,recurringEventId,originalStartTime,"
    "updated,etag,htmlLink,attendees(email,responseStatus),organizer(email)"
)

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
    event_types: list[EventType] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="Only events of these eventTypes (default, focusTime, outOfOffice, "
        "workingLocation, birthday, fromGmail...); unset: every type, future ones included.",
    )

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

    def to_params(self) -> list[tuple[str, str]]:
        """The events.list query parameters (``eventTypes`` repeats, so pairs, not a dict)."""
        params = [
            ("singleEvents", "true" if self.single_events else "false"),
            ("maxResults", str(self.max_results)),
        ]
        if self.time_min is not None:
            params.append(("timeMin", self.time_min.isoformat()))
        if self.time_max is not None:
            params.append(("timeMax", self.time_max.isoformat()))
        if self.q:
            params.append(("q", self.q))
        if self.order_by is not None:
            params.append(("orderBy", self.order_by))
        if self.time_zone is not None:
            params.append(("timeZone", self.time_zone))
        if self.show_deleted:
            # Only ever sent as true: with a sync token Google refuses showDeleted=false.
            params.append(("showDeleted", "true"))
        params.extend(("eventTypes", event_type) for event_type in self.event_types or ())
        return params
