"""The Calendar client against the emulator over real HTTP: methods, 401 handling, bounded
retries of transient failures only, and Google's errors mapped to the domain taxonomy.

The token source and the gate are fakes of this service's own interfaces; Google is the
emulator. Backoff is off (tests/conftest.py), attempts stay 3.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import simdjson

from emulator.faults import FaultRule
from emulator.state import Calendar
from gcal import calendar_api
from gcal.calendar_api import CalendarClient, EventsPage, RawEventsPage, retry_after_seconds
from gcal.errors import (
    AuthRequired,
    Conflict,
    FullSyncRequired,
    GcalError,
    Gone,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    QuotaExhausted,
    RateLimited,
    UpstreamUnavailable,
)
from gcal.event_queries import EventQuery
from gcal.event_writes import EventInput, EventPatch, EventWrite
from gcal.settings import Settings
from jobs.registry import default_scopes
from tests.harness import Emulator

USER = "user-1"
EMAIL = "alice@example.com"
ZURICH = dt.timezone(dt.timedelta(hours=2))


@dataclass
class FakeTokens:
    """Hands out ``first`` and, once a token is rejected, ``fresh``; records every call."""

    first: str
    fresh: str
    calls: list[str | None] = field(default_factory=list)
    error: GcalError | None = None

    async def access_token(self, user_id: str, *, rejected: str | None = None) -> str:
        assert user_id == USER
        self.calls.append(rejected)
        if self.error is not None:
            raise self.error
        return self.first if rejected is None else self.fresh


@dataclass
class CountingGate:
    calls: int = 0
    error: GcalError | None = None

    async def acquire(self, user_id: str) -> None:
        assert user_id == USER
        self.calls += 1
        if self.error is not None:
            raise self.error


@dataclass
class Rig:
    emu: Emulator
    client: CalendarClient
    tokens: FakeTokens
    gate: CountingGate
    access: str

    def fault(self, **rule: Any) -> None:
        self.emu.faults.add(FaultRule(**rule))

    @property
    def calendar(self) -> Calendar:
        found = self.emu.store.calendar(self.emu.store.account(EMAIL), "primary")
        assert found is not None
        return found


MakeRig = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig(emulator: Emulator) -> AsyncIterator[MakeRig]:
    """``await make_rig(first=..., fresh=..., http_timeout=...)``: a client on ``emulator``."""
    sessions: list[aiohttp.ClientSession] = []

    async def make(
        *, first: str | None = None, fresh: str | None = None, http_timeout: float = 10.0
    ) -> Rig:
        access, _ = emulator.grant(EMAIL, scopes=default_scopes())
        settings = Settings(
            dev_mode=True,
            calendar_api_base=emulator.calendar_base,  # type: ignore[arg-type]
            http_timeout=http_timeout,
        )
        session = aiohttp.ClientSession()
        sessions.append(session)
        tokens = FakeTokens(first=first or access, fresh=fresh or access)
        gate = CountingGate()
        client = CalendarClient(settings, session, tokens, gate)
        return Rig(emulator, client, tokens, gate, access)

    yield make
    for session in sessions:
        await session.close()


@pytest.fixture
async def rig(make_rig: MakeRig) -> Rig:
    return await make_rig()


def new_event_id() -> str:
    """A fresh id in Google's alphabet for client-chosen ids (base32hex)."""
    return base64.b32hexencode(secrets.token_bytes(20)).decode().lower()


def event_body(
    day: int = 1, *, summary: str = "Standup", event_id: str | None = None, **extra: Any
) -> EventWrite:
    return EventInput.model_validate(
        {
            "summary": summary,
            "start": {"dateTime": f"2024-05-{day:02d}T09:00:00+02:00"},
            "end": {"dateTime": f"2024-05-{day:02d}T09:30:00+02:00"},
            **extra,
        }
    ).for_insert(event_id or new_event_id())


def assert_clean(err: BaseException, *tokens: str) -> None:
    """No token in the message, the repr or any chained exception."""
    seen: BaseException | None = err
    while seen is not None:
        for token in tokens:
            assert token not in str(seen)
            assert token not in repr(seen)
        seen = seen.__cause__ or seen.__context__


# Methods ------------------------------------------------------------------------------------


async def test_list_events_pages_with_the_same_query(rig: Rig) -> None:
    for day in range(1, 6):
        await rig.client.insert_event(USER, "primary", event_body(day))
    query = EventQuery.model_validate(
        {
            "time_min": "2024-05-01T00:00:00+02:00",  # a '+' offset survives the query string
            "time_max": "2024-06-01T00:00:00Z",
            "order_by": "startTime",
            "max_results": 2,
        }
    )
    pages: list[EventsPage] = []
    token: str | None = None
    while True:
        page = await rig.client.list_events(
            USER,
            "primary",
            query,
            page_token=token,
            fields="items(id,start),nextPageToken,nextSyncToken,timeZone",
        )
        pages.append(page)
        token = page.next_page_token
        if token is None:
            break
    starts = [item["start"]["dateTime"] for page in pages for item in page.items]
    assert len(starts) == 5
    assert starts == sorted(starts)
    assert [len(page.items) for page in pages] == [2, 2, 1]
    assert pages[-1].next_sync_token
    assert all(page.next_sync_token is None for page in pages[:-1])
    assert pages[0].time_zone == "UTC"
    assert rig.emu.store.requests["events.list"] == 3


async def test_a_raw_page_is_googles_compact_bytes(rig: Rig) -> None:
    """Pages are asked for without Google's indentation (``prettyPrint=false``), and their
    events pass on as those bytes."""
    for day in (1, 2):
        await rig.client.insert_event(USER, "primary", event_body(day))
    page = await rig.client.list_events_raw(USER, "primary", EventQuery())
    events = json.loads(page.items_json)
    assert [event["summary"] for event in events] == ["Standup", "Standup"]
    assert page.items_json == json.dumps(events, separators=(",", ":")).encode()


async def test_list_events_time_window(rig: Rig) -> None:
    await rig.client.insert_event(USER, "primary", event_body(1, summary="in"))
    await rig.client.insert_event(USER, "primary", event_body(20, summary="out"))
    query = EventQuery(
        time_min=dt.datetime(2024, 5, 1, tzinfo=ZURICH),
        time_max=dt.datetime(2024, 5, 2, tzinfo=dt.UTC),
    )
    page = await rig.client.list_events(USER, "primary", query)
    assert [item["summary"] for item in page.items] == ["in"]


async def test_sync_token_lists_changes_since(rig: Rig) -> None:
    await rig.client.insert_event(USER, "primary", event_body(1))
    first = await rig.client.list_events(USER, "primary", EventQuery())
    assert first.next_sync_token is not None
    created = await rig.client.insert_event(USER, "primary", event_body(2, summary="new"))
    changes = await rig.client.list_events(
        USER, "primary", EventQuery(), sync_token=first.next_sync_token
    )
    assert [item["id"] for item in changes.items] == [created["id"]]

    rig.calendar.expire_sync_tokens()
    with pytest.raises(FullSyncRequired):
        await rig.client.list_events(
            USER, "primary", EventQuery(), sync_token=changes.next_sync_token
        )


async def test_sync_token_refuses_conflicting_parameters_before_any_request(rig: Rig) -> None:
    query = EventQuery.model_validate({"q": "standup", "order_by": "updated"})
    with pytest.raises(InvalidRequest, match="q, orderBy"):
        await rig.client.list_events(USER, "primary", query, sync_token="abc")
    assert rig.gate.calls == 0
    assert rig.emu.store.requests["events.list"] == 0


async def test_insert_and_get(rig: Rig) -> None:
    event_id = new_event_id()
    event = EventInput.model_validate(
        {
            "summary": "Planning",
            "start": {"dateTime": "2024-05-01T09:00:00", "timeZone": "Europe/Zurich"},
            "end": {"dateTime": "2024-05-01T10:00:00", "timeZone": "Europe/Zurich"},
            "attendees": [{"email": "bob@example.com", "displayName": "Bob"}],
            "conference": True,
        }
    )
    created = await rig.client.insert_event(
        USER, "primary", event.for_insert(event_id), send_updates="all"
    )
    assert created["id"] == event_id
    assert created["summary"] == "Planning"
    assert created["hangoutLink"]
    assert created["conferenceData"]["conferenceSolution"]["key"]["type"] == "hangoutsMeet"
    assert rig.emu.store.sent_updates == [("events.insert", event_id, "all")]

    fetched = await rig.client.get_event(USER, "primary", created["id"], fields="id,summary")
    assert fetched == {"id": created["id"], "summary": "Planning"}  # Google's partial response


async def test_a_conference_is_asked_for_with_its_version_and_a_stable_request(rig: Rig) -> None:
    body = event_body(1, conference=True)
    assert body.conference_data_version == 1
    created = await rig.client.insert_event(USER, "primary", body)
    assert "hangoutLink" in created
    assert created["conferenceData"]["createRequest"]["requestId"] == created["id"]


async def test_calendar_ids_are_percent_encoded(rig: Rig) -> None:
    account = rig.emu.store.account(EMAIL)
    odd = "team#ops/x@group.calendar.google.com"
    account.calendars[odd] = Calendar(id=odd, owner=account.email, summary="Ops")
    created = await rig.client.insert_event(USER, odd, event_body(3))
    assert odd in {c["id"] for c in await rig.client.list_calendars(USER)}
    page = await rig.client.list_events(USER, odd, EventQuery())
    assert [item["id"] for item in page.items] == [created["id"]]
    assert (await rig.client.get_event(USER, odd, created["id"]))["id"] == created["id"]
    with pytest.raises(NotFound):
        await rig.client.get_event(USER, "primary", created["id"])


async def test_patch_with_if_match(rig: Rig) -> None:
    created = await rig.client.insert_event(USER, "primary", event_body(1))
    patched = await rig.client.patch_event(
        USER,
        "primary",
        created["id"],
        EventPatch.model_validate({"summary": "Renamed"}).for_patch(created["id"]),
        if_match=created["etag"],
        send_updates="none",
    )
    assert patched["summary"] == "Renamed"
    assert patched["etag"] != created["etag"]

    with pytest.raises(PreconditionFailed):
        await rig.client.patch_event(
            USER,
            "primary",
            created["id"],
            EventWrite({"summary": "Stale"}, None),
            if_match=created["etag"],
        )
    assert (await rig.client.get_event(USER, "primary", created["id"]))["summary"] == "Renamed"
    assert rig.emu.store.requests["events.patch"] == 2  # the 412 was not retried


async def test_patch_adds_a_conference(rig: Rig) -> None:
    created = await rig.client.insert_event(USER, "primary", event_body(1))
    patch = EventPatch.model_validate({"conference": True})
    patched = await rig.client.patch_event(
        USER, "primary", created["id"], patch.for_patch(created["id"])
    )
    assert patched["hangoutLink"]


async def test_delete_then_gone_and_unknown_not_found(rig: Rig) -> None:
    created = await rig.client.insert_event(USER, "primary", event_body(1))
    await rig.client.delete_event(
        USER, "primary", created["id"], if_match=created["etag"], send_updates="all"
    )
    assert rig.calendar.events[created["id"]].cancelled
    with pytest.raises(Gone):
        await rig.client.delete_event(USER, "primary", created["id"])
    with pytest.raises(NotFound) as caught:
        await rig.client.delete_event(USER, "primary", "nosuchevent0")
    assert not isinstance(caught.value, Gone)
    with pytest.raises(NotFound):
        await rig.client.list_events(USER, "nobody@example.com", EventQuery())


async def test_list_calendars(rig: Rig) -> None:
    account = rig.emu.store.account(EMAIL)
    other = "team@group.calendar.google.com"
    account.calendars[other] = Calendar(id=other, owner=account.email, summary="Team")
    calendars = await rig.client.list_calendars(USER)
    assert [c["id"] for c in calendars] == [EMAIL, other]
    assert calendars[0]["primary"] is True


async def test_free_busy(rig: Rig) -> None:
    await rig.client.insert_event(USER, "primary", event_body(1))
    await rig.client.insert_event(
        USER, "primary", event_body(1, summary="free", transparency="transparent")
    )
    answer = await rig.client.free_busy(
        USER,
        time_min=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
        time_max=dt.datetime(2024, 5, 2, tzinfo=dt.UTC),
        calendar_ids=["primary", "missing@example.com"],
        time_zone="UTC",
    )
    assert answer["calendars"]["primary"]["busy"] == [
        {"start": "2024-05-01T07:00:00Z", "end": "2024-05-01T07:30:00Z"}
    ]
    assert answer["calendars"]["missing@example.com"]["errors"][0]["reason"] == "notFound"


async def test_free_busy_needs_aware_times(rig: Rig) -> None:
    with pytest.raises(InvalidRequest, match="time_min"):
        await rig.client.free_busy(
            USER,
            time_min=dt.datetime(2024, 5, 1),  # noqa: DTZ001 - the naive value under test
            time_max=dt.datetime(2024, 5, 2, tzinfo=dt.UTC),
            calendar_ids=["primary"],
        )
    assert rig.emu.store.requests["freebusy.query"] == 0


# Authorization ------------------------------------------------------------------------------


async def test_401_refreshes_once_then_succeeds(make_rig: MakeRig) -> None:
    rig = await make_rig(first="ya29.bogus-first")
    page = await rig.client.list_events(USER, "primary", EventQuery())
    assert page.items == []
    assert rig.tokens.calls == [None, "ya29.bogus-first"]
    assert rig.emu.store.requests["events.list"] == 2
    assert rig.gate.calls == 2


async def test_401_twice_is_auth_required(make_rig: MakeRig) -> None:
    rig = await make_rig(first="ya29.bogus-first", fresh="ya29.bogus-fresh")
    with pytest.raises(AuthRequired) as caught:
        await rig.client.insert_event(USER, "primary", event_body(1))
    assert rig.tokens.calls == [None, "ya29.bogus-first"]
    assert rig.emu.store.requests["events.insert"] == 2
    assert_clean(caught.value, "ya29.bogus-first", "ya29.bogus-fresh", rig.access)


async def test_revoked_token_is_refreshed(rig: Rig) -> None:
    rig.emu.store.access_tokens.pop(rig.access)  # Google forgot the token (revoked/expired)
    fresh, _ = rig.emu.grant(EMAIL, scopes=default_scopes())
    rig.tokens.fresh = fresh
    await rig.client.list_calendars(USER)
    assert rig.tokens.calls == [None, rig.access]


async def test_token_source_errors_pass_through_unretried(rig: Rig) -> None:
    rig.tokens.error = UpstreamUnavailable("token endpoint down")
    with pytest.raises(UpstreamUnavailable, match="token endpoint down"):
        await rig.client.list_calendars(USER)
    assert rig.tokens.calls == [None]  # the token store has its own retries: none stacked
    assert rig.gate.calls == 0


async def test_gate_refusal_passes_through_without_a_request(rig: Rig) -> None:
    rig.gate.error = RateLimited("user budget spent", retry_after=3)
    with pytest.raises(RateLimited) as caught:
        await rig.client.list_calendars(USER)
    assert caught.value.retry_after == 3
    assert rig.gate.calls == 1
    assert rig.emu.store.requests["calendarList.list"] == 0


# Transient failures: retried in the call, a bounded number of times --------------------------


async def test_503_once_is_retried(rig: Rig) -> None:
    rig.fault(endpoint="events.list", error_rate=1.0, error_status=503, count=1)
    page = await rig.client.list_events(USER, "primary", EventQuery())
    assert page.items == []
    assert rig.emu.faults.injected == 1
    assert rig.emu.store.requests["events.list"] == 1
    assert rig.gate.calls == 2  # once per HTTP request


async def test_503_always_gives_up_after_three_attempts(rig: Rig) -> None:
    rig.fault(endpoint="events.insert", error_rate=1.0, error_status=503, retry_after=5)
    with pytest.raises(UpstreamUnavailable) as caught:
        await rig.client.insert_event(USER, "primary", event_body(1))
    assert rig.emu.faults.injected == 3
    assert rig.gate.calls == 3
    assert rig.tokens.calls == [None]
    assert "503" in caught.value.message
    assert_clean(caught.value, rig.access)


async def test_connection_reset_is_retried(rig: Rig) -> None:
    rig.fault(endpoint="events.get", reset_rate=1.0, count=2)
    created = await rig.client.insert_event(USER, "primary", event_body(1))
    fetched = await rig.client.get_event(USER, "primary", created["id"])
    assert fetched["id"] == created["id"]
    assert rig.emu.faults.injected == 2


async def test_connection_reset_always_is_upstream_unavailable(rig: Rig) -> None:
    rig.fault(endpoint="events.insert", reset_rate=1.0)
    with pytest.raises(UpstreamUnavailable) as caught:
        await rig.client.insert_event(USER, "primary", event_body(1))
    assert rig.emu.faults.injected == 3
    assert rig.gate.calls == 3
    assert_clean(caught.value, rig.access)


async def test_reset_of_an_idempotent_request_is_resent_by_aiohttp(rig: Rig) -> None:
    # aiohttp re-sends an idempotent request once when the connection drops (RFC 9112
    # §9.3.1): a transport rule of the session, below this client's 3 attempts.
    rig.fault(endpoint="calendarList.list", reset_rate=1.0)
    with pytest.raises(UpstreamUnavailable):
        await rig.client.list_calendars(USER)
    assert rig.gate.calls == 3
    assert rig.emu.faults.injected == 6


async def test_timeout_is_retried(make_rig: MakeRig) -> None:
    rig = await make_rig(http_timeout=0.3)
    rig.fault(endpoint="calendarList.list", latency_ms=1000, count=1)
    calendars = await rig.client.list_calendars(USER)
    assert [c["id"] for c in calendars] == [EMAIL]
    assert rig.gate.calls == 2


@pytest.mark.parametrize("kind", ["truncate_rate", "malformed_rate"])
async def test_broken_body_once_is_retried(rig: Rig, kind: str) -> None:
    await rig.client.insert_event(USER, "primary", event_body(1))
    rig.fault(endpoint="events.list", count=1, **{kind: 1.0})
    page = await rig.client.list_events(USER, "primary", EventQuery())
    assert len(page.items) == 1
    assert rig.emu.faults.injected == 1
    assert rig.emu.store.requests["events.list"] == 2


@pytest.mark.parametrize("kind", ["truncate_rate", "malformed_rate"])
async def test_broken_body_always_is_upstream_unavailable(rig: Rig, kind: str) -> None:
    await rig.client.insert_event(USER, "primary", event_body(1))
    rig.fault(endpoint="events.list", **{kind: 1.0})
    with pytest.raises(UpstreamUnavailable):
        await rig.client.list_events(USER, "primary", EventQuery())
    assert rig.emu.faults.injected == 3


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'{"items": {"id": "x"}}',
        b'{"items": ["x"]}',
        b'{"items": [], "nextPageToken": 5}',
        b"\xff",
    ],
)
@pytest.mark.parametrize("parse", [EventsPage.parse, RawEventsPage.parse], ids=["parsed", "raw"])
def test_wrong_shaped_listing_is_upstream_unavailable(
    body: bytes, parse: Callable[[bytes], object]
) -> None:
    with pytest.raises(UpstreamUnavailable):
        parse(body)


def test_a_raw_page_keeps_googles_items_as_json() -> None:
    body = (
        b'{"timeZone": "UTC", "items": [ {"id": "a", "summary": "\\u00e9t\xc3\xa9"}, {"id": "b"} ]}'
    )
    page = RawEventsPage.parse(body)
    assert (page.count, page.time_zone, page.next_page_token) == (2, "UTC", None)
    assert json.loads(page.items_json) == json.loads(body)["items"]
    assert RawEventsPage.parse(b'{"nextSyncToken": "s1"}').items_json == b"[]"


def test_a_raw_page_parses_while_an_earlier_document_is_still_referenced() -> None:
    """Pages share one simdjson parser; a document kept alive elsewhere must not break the
    next page (simdjson refuses to reuse a parser whose document is still referenced)."""
    held = calendar_api._PARSER.parse(b'{"items": [{"id": "old"}]}')
    page = RawEventsPage.parse(b'{"items": [{"id": "new"}]}')
    assert json.loads(page.items_json) == [{"id": "new"}]
    assert isinstance(held, simdjson.Object)
    assert held.as_dict() == {"items": [{"id": "old"}]}  # the earlier document is untouched
    del held
    with pytest.raises(UpstreamUnavailable) as failure:
        RawEventsPage.parse(b'{"items": ["x"]}')
    # The traceback keeps the failed parse's frame alive, but that frame holds no views into
    # the shared parser any more: the parser itself can be reused at once.
    assert failure.traceback
    assert calendar_api._PARSER.parse(b'{"items": []}') is not None


def test_listing_without_items_is_empty() -> None:
    page = EventsPage.parse(b'{"nextSyncToken": "s1"}')
    assert page == EventsPage(items=[], next_page_token=None, next_sync_token="s1", time_zone=None)


# Rate limits and permanent errors: never retried in the call ---------------------------------


async def test_429_is_rate_limited_with_retry_after_and_no_retry(rig: Rig) -> None:
    rig.fault(endpoint="events.list", error_rate=1.0, error_status=429, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        await rig.client.list_events(USER, "primary", EventQuery())
    assert not isinstance(caught.value, QuotaExhausted)
    assert caught.value.retry_after == 7
    assert rig.emu.faults.injected == 1
    assert rig.gate.calls == 1


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "userRateLimitExceeded"])
async def test_403_rate_limits_are_rate_limited(rig: Rig, reason: str) -> None:
    rig.fault(endpoint="events.insert", error_rate=1.0, error_status=403, error_reason=reason)
    with pytest.raises(RateLimited) as caught:
        await rig.client.insert_event(USER, "primary", event_body(1))
    assert not isinstance(caught.value, QuotaExhausted)
    assert caught.value.retry_after is None
    assert rig.emu.faults.injected == 1


async def test_quota_exceeded_is_quota_exhausted(rig: Rig) -> None:
    rig.emu.store.account(EMAIL).quota_exceeded = True
    with pytest.raises(QuotaExhausted):
        await rig.client.insert_event(USER, "primary", event_body(1))
    assert rig.emu.store.requests["events.insert"] == 1


async def test_duplicate_client_id_is_conflict(rig: Rig) -> None:
    body = event_body(1)
    await rig.client.insert_event(USER, "primary", body)
    with pytest.raises(Conflict):
        await rig.client.insert_event(USER, "primary", body)
    assert rig.emu.store.requests["events.insert"] == 2


async def test_bad_request_is_invalid_request(rig: Rig) -> None:
    body = EventWrite(  # what the models would refuse, sent raw: Google refuses it too
        {
            "start": {"dateTime": "2024-05-01T10:00:00Z"},
            "end": {"dateTime": "2024-05-01T09:00:00Z"},
        },
        None,
    )
    with pytest.raises(InvalidRequest) as caught:
        await rig.client.insert_event(USER, "primary", body)
    assert "timeRangeEmpty" in caught.value.message
    assert rig.emu.store.requests["events.insert"] == 1
    assert_clean(caught.value, rig.access)


# Retry-After --------------------------------------------------------------------------------


def test_retry_after_seconds_and_http_date() -> None:
    now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert retry_after_seconds("7", now=now) == 7.0
    assert retry_after_seconds(" 120 ", now=now) == 120.0
    assert retry_after_seconds("Wed, 01 May 2024 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon", now=now) is None
    assert retry_after_seconds("-3", now=now) is None
    assert retry_after_seconds("\u00b2", now=now) is None
    assert retry_after_seconds(None) is None
