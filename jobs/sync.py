"""Sync jobs. The workers schedule them for every linked user (:mod:`worker.scheduler`,
:mod:`gcal.sync_schedule`): ``sync_calendars`` reads a user's calendar list and keeps the set
of synced calendars current; ``sync_calendar`` announces what changed in one calendar. A
service may also enqueue ``sync_calendar`` to have a calendar synced now.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field, ValidationError
from redis.asyncio.client import Pipeline

from gcal.scalars import CalendarId
from gcal.scopes import READ_CALENDAR_LIST, READ_EVENTS
from gcal.services import Services
from gcal.sync_schedule import CALENDAR_LIST
from jobs.arguments import JobArgs
from jobs.results import JobResult
from jobs.spec import JobRun, job

log = logging.getLogger(__name__)

# Results that mean the user must link again: their syncs stop until they do.
_RELINK = frozenset({"auth_required", "auth_revoked", "scope_missing"})
# Calendars whose events the user may read (freeBusyReader sees busy times only).
_READABLE = frozenset({"owner", "writer", "reader"})


class _CalendarId(BaseModel):
    id: CalendarId


def _release(
    s: Services, pipe: Pipeline, *, user_id: str, calendar_id: str, run: JobRun, result: JobResult
) -> None:
    s.schedule.stage_release(pipe, user_id, calendar_id, run.job_id)
    if result.error is not None and result.error.code in _RELINK:
        log.info("syncs paused until the user links again user=%s", user_id)
        s.schedule.stage_forget_user(pipe, user_id)


# sync_calendar ---------------------------------------------------------------------------------


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


def _calendar_synced(
    s: Services, args: SyncCalendarArgs, run: JobRun, result: JobResult, pipe: Pipeline
) -> None:
    _release(s, pipe, user_id=args.user_id, calendar_id=args.calendar_id, run=run, result=result)


@job(needs=[READ_EVENTS], quiet=True, ended=_calendar_synced)
async def sync_calendar(s: Services, args: SyncCalendarArgs, run: JobRun) -> SyncCalendarData:
    """Announce what changed in one calendar since it was last synced."""
    outcome = await s.sync.run(args.user_id, args.calendar_id)
    await s.push.keep(args.user_id, args.calendar_id)
    return SyncCalendarData(
        created=outcome.created,
        updated=outcome.updated,
        deleted=outcome.deleted,
        pages=outcome.pages,
        full=outcome.full,
        resumed=outcome.resumed,
        reset=outcome.reset,
    )


# sync_calendars --------------------------------------------------------------------------------


class SyncCalendarsArgs(JobArgs):
    """Re-read the user's calendar list."""


class SyncCalendarsData(BaseModel):
    added: list[str] = Field(description="Calendars synced from now on.")
    removed: list[str] = Field(description="Calendars no longer synced.")
    synced: int = Field(description="How many of the user's calendars are synced.")


def _list_synced(
    s: Services, args: SyncCalendarsArgs, run: JobRun, result: JobResult, pipe: Pipeline
) -> None:
    _release(s, pipe, user_id=args.user_id, calendar_id=CALENDAR_LIST, run=run, result=result)


@job(needs=[READ_CALENDAR_LIST], quiet=True, ended=_list_synced)
async def sync_calendars(s: Services, args: SyncCalendarsArgs, run: JobRun) -> SyncCalendarsData:
    """Re-read the user's calendar list: sync new calendars, stop syncing removed ones."""
    readable = set()
    for entry in await s.calendar.list_calendars(args.user_id):
        if entry.get("accessRole") not in _READABLE or entry.get("deleted"):
            continue
        try:
            readable.add(_CalendarId.model_validate({"id": entry.get("id")}).id)
        except ValidationError:
            log.warning("a calendar id this service cannot use user=%s", args.user_id)
    current = await s.schedule.calendars(args.user_id)
    added, removed = sorted(readable - current), sorted(current - readable)
    await s.schedule.add_calendars(args.user_id, added)
    if removed:
        await s.push.stop_all(args.user_id, removed)
        await s.schedule.remove_calendars(args.user_id, removed)
        await s.sync.forget(args.user_id, removed)
    return SyncCalendarsData(added=added, removed=removed, synced=len(readable))
