"""Event jobs: get_events, create_event, update_event, delete_event.

``create_event`` is idempotent across retries and crashes: the Google event id is derived
from the idempotency key (base32hex of a SHA-256, the alphabet Google allows for
client-supplied ids), so a re-run inserts the same id and Google's 409 tells us the event
already exists; we then return that event, marked ``created: false``.

Events in results are Google Calendar v3 Event resources, passed through as Google sent them
(not re-validated item by item: pages of 250 events stay cheap).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Literal, cast

import orjson
from pydantic import BaseModel, Field

from gcal.errors import Conflict, Gone, PreconditionFailed
from gcal.event_queries import BASIC_EVENT_FIELDS, EventQuery
from gcal.event_writes import EventInput, EventPatch
from gcal.scalars import CalendarId, ETag, EventId
from gcal.scopes import READ_EVENTS, WRITE_EVENTS
from gcal.services import Services
from jobs.arguments import JobArgs, SendUpdates
from jobs.spec import JobRun, job


def event_id_for(user_id: str, calendar_id: str, idempotency_key: str) -> str:
    """The Google event id for an idempotency key: 52 characters of base32hex (0-9, a-v)."""
    digest = hashlib.sha256(f"{user_id}\n{calendar_id}\n{idempotency_key}".encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


# get_events -----------------------------------------------------------------------------------


class GetEventsArgs(JobArgs, EventQuery):
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


@job(needs=[READ_EVENTS])
async def get_events(s: Services, args: GetEventsArgs, run: JobRun) -> GetEventsData:
    """Events of one calendar in a time window, following Google's pages."""
    fields = (
        None
        if args.projection == "full"
        else f"nextPageToken,nextSyncToken,timeZone,items({BASIC_EVENT_FIELDS})"
    )
    pages: list[bytes] = []  # each page's items array, as Google's JSON
    count = 0
    time_zone: str | None = None
    page_token: str | None = None
    truncated = False
    for _ in range(s.settings.get_events_max_pages):
        room = args.max_events - count
        # Never more than there is room for: a page is passed on whole, never cut.
        query = args.model_copy(update={"max_results": min(args.max_results, room)})
        page = await s.calendar.list_events_raw(
            args.user_id, args.calendar_id, query, page_token=page_token, fields=fields
        )
        time_zone = time_zone or page.time_zone
        if page.count:
            pages.append(page.items_json)
            count += page.count
        if count >= args.max_events and page.next_page_token:
            truncated = True
            break
        if not page.next_page_token:
            break
        page_token = page.next_page_token
    else:
        truncated = True  # the page cap ran out while Google still had pages
    # Google's events pass through as its JSON, spliced into the result: no parse, and at
    # most one copy (several pages' arrays joined into one; a page's bytes are 150 KB).
    events = orjson.Fragment(_joined(pages))
    return GetEventsData.model_construct(
        events=cast("list[dict[str, Any]]", events), truncated=truncated, time_zone=time_zone
    )


def _joined(arrays: list[bytes]) -> bytes:
    """JSON arrays as one array: ``[1,2]`` and ``[3]`` are ``[1,2,3]``."""
    if len(arrays) == 1:
        return arrays[0]
    parts: list[bytes | memoryview] = [b"["]
    for n, array in enumerate(arrays):
        if n:
            parts.append(b",")
        parts.append(memoryview(array)[1:-1])
    parts.append(b"]")
    return b"".join(parts)


# create_event -----------------------------------------------------------------------------------


class CreateEventArgs(JobArgs):
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


@job(needs=[WRITE_EVENTS])
async def create_event(s: Services, args: CreateEventArgs, run: JobRun) -> CreateEventData:
    """Create an event, exactly once per idempotency key however often the job runs."""
    event_id = event_id_for(args.user_id, args.calendar_id, args.idempotency_key or run.job_id)
    try:
        event = await s.calendar.insert_event(
            args.user_id,
            args.calendar_id,
            args.event.for_insert(event_id),
            send_updates=args.send_updates,
        )
    except Conflict:
        # An earlier run created it (its answer lost to a crash or a timeout).
        existing = await s.calendar.get_event(args.user_id, args.calendar_id, event_id)
        return CreateEventData(event=existing, created=False)
    return CreateEventData(event=event, created=True)


# update_event -----------------------------------------------------------------------------------


class UpdateEventArgs(JobArgs):
    """Change some fields of an event; with ``etag``, only if it is still that version."""

    calendar_id: CalendarId = "primary"
    event_id: EventId
    patch: EventPatch
    etag: ETag | None = None
    send_updates: SendUpdates = "none"


class UpdateEventData(BaseModel):
    event: dict[str, Any]


@job(needs=[WRITE_EVENTS])
async def update_event(s: Services, args: UpdateEventArgs, run: JobRun) -> UpdateEventData:
    """Change some fields of an event; with an etag, only if it is still that version."""
    write = args.patch.for_patch(args.event_id)
    try:
        event = await s.calendar.patch_event(
            args.user_id,
            args.calendar_id,
            args.event_id,
            write,
            if_match=args.etag,
            send_updates=args.send_updates,
        )
    except PreconditionFailed:
        # A re-run after a lost answer meets its own change as a newer version: if the event
        # already holds every patched value, the goal holds; otherwise it really changed.
        current = await s.calendar.get_event(args.user_id, args.calendar_id, args.event_id)
        if run.attempt > 1 and all(current.get(key) == value for key, value in write.body.items()):
            return UpdateEventData(event=current)
        raise
    return UpdateEventData(event=event)


# delete_event -----------------------------------------------------------------------------------


class DeleteEventArgs(JobArgs):
    """Delete an event; deleting one already gone succeeds (``already_deleted``)."""

    calendar_id: CalendarId = "primary"
    event_id: EventId
    etag: ETag | None = None
    send_updates: SendUpdates = "none"


class DeleteEventData(BaseModel):
    already_deleted: bool


@job(needs=[WRITE_EVENTS])
async def delete_event(s: Services, args: DeleteEventArgs, run: JobRun) -> DeleteEventData:
    """Delete an event; one already deleted is a success."""
    try:
        await s.calendar.delete_event(
            args.user_id,
            args.calendar_id,
            args.event_id,
            if_match=args.etag,
            send_updates=args.send_updates,
        )
    except Gone:
        # Deleted already, by an earlier run of this job or by someone else: the goal holds.
        return DeleteEventData(already_deleted=True)
    return DeleteEventData(already_deleted=False)
