"""Sync jobs: the workers schedule them for every linked user (:mod:`gcal.sync_schedule`);
a service may also enqueue one to have a calendar synced now."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gcal.scalars import CalendarId
from gcal.scopes import READ_EVENTS
from gcal.services import Services
from jobs.arguments import JobArgs
from jobs.spec import JobRun, job


class SyncCalendarArgs(JobArgs):
    """Sync one calendar of the user."""

    calendar_id: CalendarId = "primary"


class SyncCalendarData(BaseModel):
    created: int = Field(description="event_created notifications published.")
    updated: int = Field(description="event_updated notifications published.")
    deleted: int = Field(description="event_deleted notifications published.")
    pages: int = Field(description="Pages Google was asked for.")
    full: bool = Field(description="The window was listed (first sync, or the token expired).")
    resumed: bool = Field(description="It went on from where a cut-off run had got to.")
    reset: str | None = Field(default=None, description="Why stored state was dropped, if it was.")


@job(needs=[READ_EVENTS], quiet=True)
async def sync_calendar(s: Services, args: SyncCalendarArgs, run: JobRun) -> SyncCalendarData:
    """Announce what changed in one calendar since it was last synced."""
    outcome = await s.sync.run(args.user_id, args.calendar_id)
    return SyncCalendarData(
        created=outcome.created,
        updated=outcome.updated,
        deleted=outcome.deleted,
        pages=outcome.pages,
        full=outcome.full,
        resumed=outcome.resumed,
        reset=outcome.reset,
    )
