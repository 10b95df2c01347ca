"""Calendar-level jobs: list_calendars and get_free_busy."""

from __future__ import annotations

from jobs.contract import GetFreeBusyArgs, GetFreeBusyData, ListCalendarsArgs, ListCalendarsData
from jobs.deps import JobDeps, JobInfo


async def list_calendars(d: JobDeps, args: ListCalendarsArgs, job: JobInfo) -> ListCalendarsData:
    return ListCalendarsData(calendars=await d.calendar.list_calendars(args.user_id))


async def get_free_busy(d: JobDeps, args: GetFreeBusyArgs, job: JobInfo) -> GetFreeBusyData:
    answer = await d.calendar.free_busy(
        args.user_id,
        time_min=args.time_min,
        time_max=args.time_max,
        calendar_ids=args.calendar_ids,
        time_zone=args.time_zone,
    )
    return GetFreeBusyData(calendars=answer.get("calendars", {}))
