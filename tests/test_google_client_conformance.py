"""The unmodified google-api-python-client against the emulator (google-api-facts §3).

If Google's own client parses our answers, raises ``HttpError`` with the right status and
reason, and pages with ``list_next``, the product's code sees the emulator as it would see
Google. The library is synchronous, so the emulator runs in its own thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import google.oauth2.credentials
import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from tests.harness import Emulator

EMAIL = "dana@example.com"


@pytest.fixture
def service(threaded_emulator: Emulator) -> Iterator[Any]:
    access, _ = threaded_emulator.grant(EMAIL)
    credentials = google.oauth2.credentials.Credentials(token=access)  # type: ignore[no-untyped-call]
    with build(
        "calendar",
        "v3",
        credentials=credentials,
        client_options={"api_endpoint": threaded_emulator.calendar_base},
        static_discovery=True,
        cache_discovery=False,
    ) as built:
        yield built


def body(day: int, summary: str = "meeting", **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "start": {"dateTime": f"2026-03-{day:02d}T09:00:00+01:00"},
        "end": {"dateTime": f"2026-03-{day:02d}T10:00:00+01:00"},
        **extra,
    }


def reason_of(error: HttpError) -> str:
    details = error.error_details
    assert isinstance(details, list)
    return str(details[0]["reason"])


def full_sync(service: Any) -> tuple[list[dict[str, Any]], str]:
    items: list[dict[str, Any]] = []
    request = service.events().list(calendarId="primary", maxResults=2)
    while request is not None:
        page = request.execute()
        items.extend(page["items"])
        token = page.get("nextSyncToken")
        request = service.events().list_next(request, page)
    assert token
    return items, token


def test_list_pages_with_list_next(service: Any) -> None:
    created = {
        service.events().insert(calendarId="primary", body=body(d)).execute()["id"]
        for d in range(1, 6)
    }
    items, _ = full_sync(service)
    assert {e["id"] for e in items} == created
    assert len(items) == 5


def test_incremental_sync_sees_a_change_and_a_tombstone(service: Any) -> None:
    events = service.events()
    kept = events.insert(calendarId="primary", body=body(1)).execute()
    doomed = events.insert(calendarId="primary", body=body(2)).execute()
    _, token = full_sync(service)
    events.patch(calendarId="primary", eventId=kept["id"], body={"summary": "renamed"}).execute()
    assert events.delete(calendarId="primary", eventId=doomed["id"]).execute() == ""
    changes = events.list(calendarId="primary", syncToken=token).execute()
    by_id = {e["id"]: e for e in changes["items"]}
    assert by_id[kept["id"]]["summary"] == "renamed"
    assert by_id[doomed["id"]]["status"] == "cancelled"
    assert "nextSyncToken" in changes


def test_garbage_sync_token_is_400_invalid(service: Any) -> None:
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", syncToken="not-a-token").execute()
    assert caught.value.status_code == 400
    assert caught.value.reason == "Invalid sync token value."
    assert reason_of(caught.value) == "invalid"


def test_expired_sync_token_is_410(service: Any, threaded_emulator: Emulator) -> None:
    _, token = full_sync(service)
    store = threaded_emulator.store
    calendar = store.calendar(store.account(EMAIL), "primary")
    assert calendar is not None
    calendar.expire_sync_tokens()
    with pytest.raises(HttpError) as caught:
        service.events().list(calendarId="primary", syncToken=token).execute()
    assert caught.value.status_code == 410
    assert reason_of(caught.value) == "fullSyncRequired"


def test_insert_errors_are_http_errors_with_googles_reasons(service: Any) -> None:
    events = service.events()
    with pytest.raises(HttpError) as bad_id:
        events.insert(calendarId="primary", body=body(1, id="UPPER_case")).execute()
    assert bad_id.value.status_code == 400
    assert reason_of(bad_id.value) == "invalid"
    created = events.insert(calendarId="primary", body=body(1, id="clientid0001")).execute()
    assert created["id"] == "clientid0001"
    with pytest.raises(HttpError) as duplicate:
        events.insert(calendarId="primary", body=body(1, id="clientid0001")).execute()
    assert duplicate.value.status_code == 409
    assert reason_of(duplicate.value) == "duplicate"


def test_insert_with_conference_and_send_updates(service: Any) -> None:
    request = service.events().insert(
        calendarId="primary",
        body=body(1, conferenceData={"createRequest": {"requestId": "req-1"}}),
        conferenceDataVersion=1,
        sendUpdates="all",
    )
    created = request.execute()
    assert created["hangoutLink"].startswith("https://meet.google.com/")


def test_patch_with_if_match(service: Any) -> None:
    events = service.events()
    event = events.insert(calendarId="primary", body=body(1)).execute()
    request = events.patch(calendarId="primary", eventId=event["id"], body={"summary": "v2"})
    request.headers["If-Match"] = event["etag"]
    patched = request.execute()
    assert patched["summary"] == "v2"

    stale = events.patch(calendarId="primary", eventId=event["id"], body={"summary": "v3"})
    stale.headers["If-Match"] = event["etag"]
    with pytest.raises(HttpError) as caught:
        stale.execute()
    assert caught.value.status_code == 412
    assert reason_of(caught.value) == "conditionNotMet"


def test_update_get_and_delete(service: Any) -> None:
    events = service.events()
    event = events.insert(calendarId="primary", body=body(1, description="d")).execute()
    updated = events.update(calendarId="primary", eventId=event["id"], body=body(2)).execute()
    assert "description" not in updated
    assert (
        events.get(calendarId="primary", eventId=event["id"]).execute()["start"] == body(2)["start"]
    )
    assert events.delete(calendarId="primary", eventId=event["id"]).execute() == ""
    with pytest.raises(HttpError) as caught:
        events.delete(calendarId="primary", eventId=event["id"]).execute()
    assert caught.value.status_code == 410


def test_instances_and_single_events(service: Any) -> None:
    events = service.events()
    master = events.insert(
        calendarId="primary",
        body={
            "summary": "standup",
            "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "America/New_York"},
            "end": {"dateTime": "2026-03-02T09:15:00", "timeZone": "America/New_York"},
            "recurrence": ["RRULE:FREQ=DAILY;COUNT=4"],
        },
    ).execute()
    instances: list[dict[str, Any]] = []
    request = events.instances(calendarId="primary", eventId=master["id"], maxResults=3)
    while request is not None:
        page = request.execute()
        instances.extend(page["items"])
        request = events.instances_next(request, page)
    assert [i["id"] for i in instances] == [
        f"{master['id']}_2026030{d}T140000Z" for d in range(2, 6)
    ]
    expanded = events.list(calendarId="primary", singleEvents=True, orderBy="startTime").execute()
    assert [i["recurringEventId"] for i in expanded["items"]] == [master["id"]] * 4


def test_calendar_list_and_freebusy_need_their_scopes(service: Any) -> None:
    with pytest.raises(HttpError) as caught:
        service.calendarList().list().execute()
    assert caught.value.status_code == 403
