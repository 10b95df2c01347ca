"""Event jobs: get_events, create_event, update_event, delete_event.

``create_event`` is idempotent across retries and crashes: the Google event id is derived
from the idempotency key (base32hex of a SHA-256, the alphabet Google allows for
client-supplied ids), so a re-run inserts the same id and Google's 409 tells us the event
already exists; we then return that event, marked ``created: false``.
"""

from __future__ import annotations

import base64
import hashlib

from gcal.errors import Conflict, Gone, PreconditionFailed
from jobs.contract import (
    BASIC_EVENT_FIELDS,
    CreateEventArgs,
    CreateEventData,
    DeleteEventArgs,
    DeleteEventData,
    GetEventsArgs,
    GetEventsData,
    UpdateEventArgs,
    UpdateEventData,
)
from jobs.deps import JobDeps, JobInfo


def event_id_for(user_id: str, calendar_id: str, idempotency_key: str) -> str:
    """The Google event id for an idempotency key: 52 characters of base32hex (0-9, a-v)."""
    digest = hashlib.sha256(f"{user_id}\n{calendar_id}\n{idempotency_key}".encode()).digest()
    return base64.b32hexencode(digest).decode().rstrip("=").lower()


async def get_events(d: JobDeps, args: GetEventsArgs, job: JobInfo) -> GetEventsData:
    fields = (
        None
        if args.projection == "full"
        else f"nextPageToken,nextSyncToken,timeZone,items({BASIC_EVENT_FIELDS})"
    )
    events: list[dict[str, object]] = []
    time_zone: str | None = None
    page_token: str | None = None
    truncated = False
    for _ in range(d.settings.get_events_max_pages):
        page = await d.calendar.list_events(
            args.user_id, args.calendar_id, args, page_token=page_token, fields=fields
        )
        time_zone = time_zone or page.time_zone
        room = args.max_events - len(events)
        events.extend(page.items[:room])
        if len(page.items) > room or (len(events) == args.max_events and page.next_page_token):
            truncated = True
            break
        if not page.next_page_token:
            break
        page_token = page.next_page_token
    else:
        truncated = True  # the page cap ran out while Google still had pages
    return GetEventsData(events=events, truncated=truncated, time_zone=time_zone)


async def create_event(d: JobDeps, args: CreateEventArgs, job: JobInfo) -> CreateEventData:
    # A caller-chosen id is idempotent by itself; otherwise derive one from the key.
    event_id = args.event.id or event_id_for(
        args.user_id, args.calendar_id, args.idempotency_key or job.job_id
    )
    body = {**args.event.to_google(), "id": event_id}
    try:
        event = await d.calendar.insert_event(
            args.user_id,
            args.calendar_id,
            body,
            send_updates=args.send_updates,
            conference_data_version=1 if args.event.conference else None,
        )
    except Conflict:
        # An earlier run created it (its answer lost to a crash or a timeout).
        existing = await d.calendar.get_event(args.user_id, args.calendar_id, event_id)
        return CreateEventData(event=existing, created=False)
    return CreateEventData(event=event, created=True)


async def update_event(d: JobDeps, args: UpdateEventArgs, job: JobInfo) -> UpdateEventData:
    patch = args.patch.to_google()
    try:
        event = await d.calendar.patch_event(
            args.user_id,
            args.calendar_id,
            args.event_id,
            patch,
            if_match=args.etag,
            send_updates=args.send_updates,
        )
    except PreconditionFailed:
        # A re-run after a lost answer meets its own change as a newer version: if the event
        # already holds every patched value, the goal holds; otherwise it really changed.
        current = await d.calendar.get_event(args.user_id, args.calendar_id, args.event_id)
        if job.attempt > 1 and all(current.get(key) == value for key, value in patch.items()):
            return UpdateEventData(event=current)
        raise
    return UpdateEventData(event=event)


async def delete_event(d: JobDeps, args: DeleteEventArgs, job: JobInfo) -> DeleteEventData:
    try:
        await d.calendar.delete_event(
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
