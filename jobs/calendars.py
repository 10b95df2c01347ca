"""Calendar-level jobs: list_calendars and get_free_busy."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from gcal.scalars import CalendarId, TimeZoneName
from gcal.scopes import READ_CALENDAR_LIST, READ_FREE_BUSY
from gcal.services import Services
from jobs.arguments import JobArgs
from jobs.spec import JobRun, job

# list_calendars -------------------------------------------------------------------------------


class ListCalendarsArgs(JobArgs):
    """The user's calendar list."""


class ListCalendarsData(BaseModel):
    calendars: list[dict[str, Any]] = Field(description="Google calendarList entries.")


@job(needs=[READ_CALENDAR_LIST])
async def list_calendars(s: Services, args: ListCalendarsArgs, run: JobRun) -> ListCalendarsData:
    """The user's calendar list, all pages."""
    return ListCalendarsData(calendars=await s.calendar.list_calendars(args.user_id))


# get_free_busy --------------------------------------------------------------------------------


class GetFreeBusyArgs(JobArgs):
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


@job(needs=[READ_FREE_BUSY])
async def get_free_busy(s: Services, args: GetFreeBusyArgs, run: JobRun) -> GetFreeBusyData:
    """Busy intervals of up to 50 calendars in a window."""
    answer = await s.calendar.free_busy(
        args.user_id,
        time_min=args.time_min,
        time_max=args.time_max,
        calendar_ids=args.calendar_ids,
        time_zone=args.time_zone,
    )
    return GetFreeBusyData(calendars=answer.get("calendars", {}))
