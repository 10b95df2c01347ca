"""The validated inputs: each rule with a passing and a failing case, Google's dialect out, and
validation errors (as job results report them) that name fields the way the Calendar API does."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from gcal.event_queries import EventQuery
from gcal.event_writes import EventInput, EventPatch, EventTime
from gcal.scalars import CalendarId, EventId, NewEventId
from worker.runner import field_errors

TIMED = {
    "start": {"dateTime": "2024-05-01T09:00:00+02:00"},
    "end": {"dateTime": "2024-05-01T10:00:00+02:00"},
}
ALL_DAY = {"start": {"date": "2024-05-01"}, "end": {"date": "2024-05-02"}}


def event(**changes: Any) -> dict[str, Any]:
    return {"summary": "Standup", **TIMED, **changes}


def problems(model: type[BaseModel], data: Any) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    found = {p.field: p.message for p in field_errors(caught.value)}
    return {"" if field == "(arguments)" else field: message for field, message in found.items()}


EVENT_ID = "abcdef0123456789"


def body(model: EventInput | EventPatch) -> dict[str, Any]:
    """What is sent to Google for ``model`` (an insert or a patch of EVENT_ID)."""
    write = (
        model.for_insert(EVENT_ID) if isinstance(model, EventInput) else model.for_patch(EVENT_ID)
    )
    return write.body


# EventTime ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "google"),
    [
        ({"date": "2024-05-01"}, {"date": "2024-05-01"}),
        ({"dateTime": "2024-05-01T09:00:00Z"}, {"dateTime": "2024-05-01T09:00:00Z"}),
        ({"dateTime": "2024-05-01T09:00:00+02:00"}, {"dateTime": "2024-05-01T09:00:00+02:00"}),
        (
            {"dateTime": "2024-05-01T09:00:00.250-05:00", "timeZone": "America/New_York"},
            {"dateTime": "2024-05-01T09:00:00.250000-05:00", "timeZone": "America/New_York"},
        ),
        (
            {"date_time": "2024-05-01T09:00:00", "time_zone": "Europe/Zurich"},
            {"dateTime": "2024-05-01T09:00:00", "timeZone": "Europe/Zurich"},
        ),
        (
            {"dateTime": dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC)},
            {"dateTime": "2024-05-01T09:00:00Z"},
        ),
        ({"date": dt.date(2024, 5, 1)}, {"date": "2024-05-01"}),
    ],
)
def test_event_time_to_google(data: dict[str, Any], google: dict[str, str]) -> None:
    time = EventTime.model_validate(data)
    assert time.model_dump(mode="json", by_alias=True, exclude_none=True) == google


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({}, "", "exactly one of date or dateTime"),
        ({"date": "2024-05-01", "dateTime": "2024-05-01T09:00:00Z"}, "", "exactly one"),
        ({"dateTime": "2024-05-01T09:00:00"}, "", "UTC offset or a timeZone"),
        ({"date": "2024-05-01", "timeZone": "UTC"}, "", "dateTime only"),
        ({"date": "2024-5-1"}, "date", "date such as"),
        ({"date": "2024-02-30"}, "date", "day is out of range"),
        ({"date": dt.datetime(2024, 5, 1, tzinfo=dt.UTC)}, "date", "not a date-time"),
        ({"dateTime": "2024-05-01 09:00:00Z"}, "dateTime", "RFC 3339"),
        ({"dateTime": "20240501T090000Z"}, "dateTime", "RFC 3339"),
        ({"dateTime": 1714554000}, "dateTime", "valid datetime"),
        ({"dateTime": "2024-05-01T09:00:00Z", "timeZone": "Mars/Olympus"}, "timeZone", "IANA"),
        ({"dateTime": "2024-05-01T09:00:00Z", "timeZone": "../etc/passwd"}, "timeZone", "IANA"),
        ({"dateTime": "2024-05-01T09:00:00Z", "extra": 1}, "extra", "not permitted"),
    ],
)
def test_event_time_refuses(data: dict[str, Any], field: str, problem: str) -> None:
    found = problems(EventTime, data)
    assert problem in found[field]


# EventInput ---------------------------------------------------------------------------------


def test_event_input_to_google_has_only_set_fields() -> None:
    assert body(EventInput.model_validate(event())) == {
        "id": EVENT_ID,
        "summary": "Standup",
        **TIMED,
    }


def test_event_input_full_to_google() -> None:
    event_id = "abcdef0123456789"
    model = EventInput.model_validate(
        {
            "id": "vvvvvvvvvv",  # accepted, but the insert uses the id it is given
            "summary": "Review",
            "description": "Agenda:\n\t1. numbers",
            "location": "Room 4",
            "start": {"dateTime": "2024-05-01T09:00:00", "timeZone": "Europe/Zurich"},
            "end": {"dateTime": "2024-05-01T10:00:00", "timeZone": "Europe/Zurich"},
            "attendees": [
                {"email": "bob@example.com", "displayName": "Bob", "optional": True},
                {"email": "carol@example.com"},
            ],
            "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}]},
            "recurrence": [
                "RRULE:FREQ=WEEKLY;COUNT=4",
                "EXDATE;TZID=Europe/Zurich:20240508T090000",
            ],
            "visibility": "private",
            "transparency": "transparent",
            "colorId": "11",
            "conference": True,
        }
    )
    write = model.for_insert(event_id)
    assert write.conference_data_version == 1
    assert write.body == {
        "id": event_id,
        "summary": "Review",
        "description": "Agenda:\n\t1. numbers",
        "location": "Room 4",
        "start": {"dateTime": "2024-05-01T09:00:00", "timeZone": "Europe/Zurich"},
        "end": {"dateTime": "2024-05-01T10:00:00", "timeZone": "Europe/Zurich"},
        "attendees": [
            {"email": "bob@example.com", "displayName": "Bob", "optional": True},
            {"email": "carol@example.com", "optional": False},
        ],
        "reminders": {"useDefault": False, "overrides": [{"method": "popup", "minutes": 10}]},
        "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;TZID=Europe/Zurich:20240508T090000"],
        "visibility": "private",
        "transparency": "transparent",
        "colorId": "11",
        "conferenceData": {
            "createRequest": {
                "requestId": event_id,
                "conferenceSolutionKey": {"type": "hangoutsMeet"},
            }
        },
    }


def test_the_conference_request_id_is_the_event_id_so_a_retry_asks_once() -> None:
    model = EventInput.model_validate(event(conference=True))
    assert body(model)["conferenceData"]["createRequest"]["requestId"] == EVENT_ID
    again = EventInput.model_validate(event(conference=True))  # a retried job parses afresh
    assert body(again) == body(model)
    assert EventInput.model_validate(event()).for_insert(EVENT_ID).conference_data_version is None


def test_event_input_round_trips_through_json() -> None:
    model = EventInput.model_validate(event(attendees=[{"email": "bob@example.com"}]))
    again = EventInput.model_validate_json(model.model_dump_json(by_alias=True))
    assert body(again) == body(model)
    by_name = EventInput.model_validate(model.model_dump())  # Python names validate too
    assert body(by_name) == body(model)


def test_control_characters_are_stripped() -> None:
    model = EventInput.model_validate(
        event(
            summary="Stand\x00up\nnow\t!",
            description="line one\r\nline\ttwo\x07\x1b",
            location="Room\x85 4",
            attendees=[{"email": "bob@example.com", "displayName": "Bob\x00\nB."}],
        )
    )
    assert model.summary == "Standup now !"
    assert model.description == "line one\nline\ttwo"
    assert model.location == "Room 4"
    assert model.attendees is not None
    assert model.attendees[0].display_name == "Bob B."


@pytest.mark.parametrize(
    ("name", "limit"), [("summary", 1024), ("description", 8192), ("location", 1024)]
)
def test_text_length_limits(name: str, limit: int) -> None:
    EventInput.model_validate(event(**{name: "x" * limit}))
    assert "at most" in problems(EventInput, event(**{name: "x" * (limit + 1)}))[name]
    # Stripping comes first: control characters do not count.
    EventInput.model_validate(event(**{name: "x" * limit + "\x00"}))


def test_all_day_end_is_exclusive() -> None:
    assert body(EventInput.model_validate(event(**ALL_DAY)))["end"] == {"date": "2024-05-02"}
    same_day = {"start": {"date": "2024-05-01"}, "end": {"date": "2024-05-01"}}
    assert "after start" in problems(EventInput, event(**same_day))["end"]


@pytest.mark.parametrize(
    "end",
    [
        {"dateTime": "2024-05-01T09:00:00+02:00"},  # same instant
        {"dateTime": "2024-05-01T07:00:00Z"},  # same instant, other offset
        {"dateTime": "2024-05-01T08:59:00", "timeZone": "Europe/Zurich"},
    ],
)
def test_timed_end_must_be_after_start(end: dict[str, str]) -> None:
    assert "after start" in problems(EventInput, event(end=end))["end"]


def test_timed_end_after_start_across_zones() -> None:
    model = EventInput.model_validate(
        event(end={"dateTime": "2024-05-01T09:30:00", "timeZone": "Europe/Zurich"})
    )
    assert model.end.time_zone == "Europe/Zurich"


def test_start_and_end_of_one_kind() -> None:
    mixed = {"start": {"date": "2024-05-01"}, "end": {"dateTime": "2024-05-02T10:00:00Z"}}
    assert "both be dates" in problems(EventInput, event(**mixed))["end"]


def test_start_and_end_are_required_for_input() -> None:
    found = problems(EventInput, {"summary": "x"})
    assert set(found) == {"start", "end"}


def test_attendees() -> None:
    many = [{"email": f"p{i}@example.com"} for i in range(100)]
    EventInput.model_validate(event(attendees=many))
    assert (
        "at most 100"
        in problems(EventInput, event(attendees=[*many, {"email": "one@example.com"}]))["attendees"]
    )
    found = problems(
        EventInput,
        event(
            attendees=[
                {"email": "not-an-address"},
                {"email": "b@example.com", "displayName": "x" * 257},
                {"email": "c@example.com", "optional": "yes"},
            ]
        ),
    )
    assert "email address" in found["attendees.0.email"]
    assert "at most 256" in found["attendees.1.displayName"]
    assert "valid boolean" in found["attendees.2.optional"]
    twice = [{"email": "Bob@example.com"}, {"email": "bob@Example.com"}]
    assert "twice" in problems(EventInput, event(attendees=twice))["attendees"]


def test_reminders() -> None:
    ok = {"useDefault": False, "overrides": [{"method": "email", "minutes": 40320}] * 5}
    EventInput.model_validate(event(reminders=ok))
    EventInput.model_validate(event(reminders={"useDefault": True}))
    found = problems(
        EventInput,
        event(reminders={"overrides": [{"method": "sms", "minutes": -1}]}),
    )
    assert "'email' or 'popup'" in found["reminders.overrides.0.method"]
    assert "greater than or equal to 0" in found["reminders.overrides.0.minutes"]
    assert (
        "at most 5"
        in problems(
            EventInput, event(reminders={"overrides": [{"method": "popup", "minutes": 1}] * 6})
        )["reminders.overrides"]
    )
    assert (
        "less than or equal to 40320"
        in problems(
            EventInput, event(reminders={"overrides": [{"method": "popup", "minutes": 40321}]})
        )["reminders.overrides.0.minutes"]
    )
    both = {"useDefault": True, "overrides": [{"method": "popup", "minutes": 1}]}
    assert "both" in problems(EventInput, event(reminders=both))["reminders"]


def test_recurrence() -> None:
    zoned = {
        "start": {"dateTime": "2024-05-01T09:00:00", "timeZone": "Europe/Zurich"},
        "end": {"dateTime": "2024-05-01T10:00:00", "timeZone": "Europe/Zurich"},
    }
    lines = ["RRULE:FREQ=DAILY", "EXRULE:FREQ=MONTHLY", "RDATE:20240510T090000", "EXDATE:2024"]
    EventInput.model_validate(event(recurrence=lines, **zoned))
    EventInput.model_validate(event(recurrence=["RRULE:FREQ=YEARLY"], **ALL_DAY))
    assert (
        "needs start.timeZone"
        in problems(EventInput, event(recurrence=["RRULE:FREQ=DAILY"]))["recurrence"]
    )
    assert (
        "at most 20"
        in problems(EventInput, event(recurrence=["RRULE:FREQ=DAILY"] * 21, **zoned))["recurrence"]
    )
    found = problems(
        EventInput,
        event(
            recurrence=[
                "DTSTART:20240501T090000Z",
                "rrule:FREQ=DAILY",
                "RRULE:FREQ=DAILY; COUNT=2",
                "RRULE:" + "X" * 495,
            ],
            **zoned,
        ),
    )
    assert set(found) == {f"recurrence.{i}" for i in range(4)}
    assert "at most 500" in found["recurrence.3"]


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("visibility", "confidential", "secret"),
        ("transparency", "opaque", "see-through"),
        ("colorId", "1", "12"),
        ("colorId", "10", "0"),
        ("conference", True, "true"),
    ],
)
def test_enums_and_flags(field: str, good: Any, bad: Any) -> None:
    EventInput.model_validate(event(**{field: good}))
    assert field in problems(EventInput, event(**{field: bad}))


def test_strict_types() -> None:
    found = problems(EventInput, event(summary=5, attendees=[{"email": "b@example.com", "x": 1}]))
    assert "valid string" in found["summary"]
    assert "not permitted" in found["attendees.0.x"]
    assert "not permitted" in problems(EventInput, event(sumary="typo"))["sumary"]


# Ids ----------------------------------------------------------------------------------------


class Ids(BaseModel):
    calendar: CalendarId | None = None
    event: EventId | None = None
    new: NewEventId | None = None


@pytest.mark.parametrize(
    "value",
    [
        "primary",
        "alice@example.com",
        "c_1234abcd@group.calendar.google.com",
        "en.usa#holiday@group.v.calendar.google.com",
    ],
)
def test_calendar_id_accepts(value: str) -> None:
    assert Ids(calendar=value).calendar == value


@pytest.mark.parametrize("value", ["", "a/b@example.com", "a b@example.com", "a\x00b", "x" * 257])
def test_calendar_id_refuses(value: str) -> None:
    assert "calendar" in problems(Ids, {"calendar": value})


@pytest.mark.parametrize(
    "value", ["abc12", "4h2s8rh3v3m1r7hmc8nttc6ols", "abc123_20240501T090000Z", "_60q30c1g"]
)
def test_event_id_accepts_what_google_returns(value: str) -> None:
    assert Ids(event=value).event == value


@pytest.mark.parametrize("value", ["", "a-b", "a/b", "x" * 1025])
def test_event_id_refuses(value: str) -> None:
    assert "event" in problems(Ids, {"event": value})


@pytest.mark.parametrize("value", ["abc12", "0123456789abcdefghijklmnopqrstuv", "v" * 1024])
def test_new_event_id_accepts_base32hex(value: str) -> None:
    assert Ids(new=value).new == value


@pytest.mark.parametrize("value", ["abc1", "abcw1", "ABC123", "abc_123", "v" * 1025])
def test_new_event_id_refuses(value: str) -> None:
    assert "base32hex" in problems(Ids, {"new": value})["new"]
    assert "id" in problems(EventInput, event(id=value))


# EventPatch ---------------------------------------------------------------------------------


def test_patch_sends_only_what_changes() -> None:
    assert body(EventPatch.model_validate({"summary": "Moved"})) == {"summary": "Moved"}
    assert body(EventPatch.model_validate({"attendees": []})) == {"attendees": []}
    assert body(EventPatch.model_validate(TIMED)) == TIMED


def test_patch_needs_a_change() -> None:
    assert "at least one" in problems(EventPatch, {})[""]
    assert "at least one" in problems(EventPatch, {"summary": None})[""]


def test_patch_moves_start_and_end_together() -> None:
    assert "together" in problems(EventPatch, {"start": TIMED["start"]})[""]
    backwards = {"start": TIMED["end"], "end": TIMED["start"]}
    assert "after start" in problems(EventPatch, backwards)["end"]


def test_patch_validates_what_is_set() -> None:
    found = problems(EventPatch, {"summary": "x" * 1025, "colorId": "99"})
    assert set(found) == {"summary", "colorId"}
    assert "id" in problems(EventPatch, {"id": "abcde"})


def test_patch_conference_adds_a_meet_link_only() -> None:
    write = EventPatch.model_validate({"conference": True}).for_patch(EVENT_ID)
    assert write.conference_data_version == 1
    assert write.body["conferenceData"]["createRequest"]["conferenceSolutionKey"] == {
        "type": "hangoutsMeet"
    }
    assert "conference" in problems(EventPatch, {"conference": False})


# EventQuery ---------------------------------------------------------------------------------


def test_query_defaults_to_params() -> None:
    assert dict(EventQuery().to_params()) == {"singleEvents": "true", "maxResults": "250"}


def test_query_to_params() -> None:
    query = EventQuery.model_validate(
        {
            "time_min": "2024-05-01T00:00:00+02:00",
            "time_max": "2024-05-02T00:00:00Z",
            "q": "stand\nup\x00",
            "order_by": "startTime",
            "time_zone": "Europe/Zurich",
            "max_results": 2500,
            "show_deleted": True,
        }
    )
    assert dict(query.to_params()) == {
        "timeMin": "2024-05-01T00:00:00+02:00",
        "timeMax": "2024-05-02T00:00:00+00:00",
        "q": "stand up",
        "singleEvents": "true",
        "orderBy": "startTime",
        "timeZone": "Europe/Zurich",
        "maxResults": "2500",
        "showDeleted": "true",
    }
    assert query.sync_conflicts() == ["timeMin", "timeMax", "q", "orderBy"]
    assert dict(EventQuery(single_events=False, order_by="updated").to_params()) == {
        "singleEvents": "false",
        "orderBy": "updated",
        "maxResults": "250",
    }


def test_query_event_types_repeat_and_accept_types_google_adds_later() -> None:
    query = EventQuery.model_validate({"event_types": ["focusTime", "someFutureType"]})
    assert [v for k, v in query.to_params() if k == "eventTypes"] == ["focusTime", "someFutureType"]
    assert "event_types.0" in problems(EventQuery, {"event_types": ["focus time"]})


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({"time_min": "2024-05-01T00:00:00"}, "time_min", "UTC offset"),
        ({"time_max": dt.datetime(2024, 5, 1)}, "time_max", "UTC offset"),  # noqa: DTZ001 - under test
        ({"time_min": "2024-05-01"}, "time_min", "RFC 3339"),
        (
            {"time_min": "2024-05-02T00:00:00Z", "time_max": "2024-05-01T23:00:00-01:00"},
            "time_max",
            "after time_min",
        ),
        ({"q": "x" * 257}, "q", "at most 256"),
        ({"single_events": False, "order_by": "startTime"}, "order_by", "needs single_events"),
        ({"order_by": "created"}, "order_by", "'startTime' or 'updated'"),
        ({"time_zone": "Nowhere/Special"}, "time_zone", "IANA"),
        ({"max_results": 0}, "max_results", "greater than or equal to 1"),
        ({"max_results": 2501}, "max_results", "less than or equal to 2500"),
        ({"max_results": "10"}, "max_results", "valid integer"),
        ({"show_deleted": 1}, "show_deleted", "valid boolean"),
    ],
)
def test_query_refuses(data: dict[str, Any], field: str, problem: str) -> None:
    assert problem in problems(EventQuery, data)[field]


def test_query_accepts_aware_datetimes() -> None:
    query = EventQuery(
        time_min=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        time_max=dt.datetime(2024, 5, 1, 1, tzinfo=dt.UTC),
        max_results=1,
    )
    assert dict(query.to_params())["timeMin"] == "2024-05-01T00:00:00+00:00"
    assert EventQuery.model_validate({"max_results": 5}).max_results == 5


# Validation errors --------------------------------------------------------------------------


def test_invalid_request_names_the_fields_without_values() -> None:
    secret_text = "private agenda " * 80
    with pytest.raises(ValidationError) as caught:
        EventInput.model_validate(
            {
                "summary": secret_text,
                "start": {"dateTime": "2024-05-01T09:00:00"},
                "end": {"dateTime": "2024-05-01T10:00:00Z"},
                "attendees": [{"email": "nobody"}],
            }
        )
    found = [(p.field, p.message) for p in field_errors(caught.value)]
    assert found == [
        ("summary", "String should have at most 1024 characters"),
        ("start", "dateTime needs a UTC offset or a timeZone"),
        (
            "attendees.0.email",
            "value is not a valid email address: An email address must have an @-sign.",
        ),
    ]
    assert "private agenda" not in repr(found)
    assert "nobody" not in repr(found)
