"""The async Google Calendar v3 client: one user's events, calendars and free/busy, over a
pooled aiohttp session handed in by the caller.

    client = CalendarClient(settings, session, accounts, gate=rate_limiter)
    page = await client.list_events(user_id, "primary", EventQuery(), page_token=None)
    event = await client.insert_event(user_id, "primary", EventInput(...).for_insert(event_id))

What it owns, per call:

* the URL (``settings.calendar_api_base`` plus percent-encoded path segments) and a
  per-request timeout (``settings.http_timeout``); nothing here blocks the loop;
* ``gate.acquire(user_id)`` before every HTTP request, then ``Authorization: Bearer``;
* a 401 gets one fresh token (``access_token(user_id, rejected=token)``) and one more round;
  a second 401 is :class:`~gcal.errors.AuthRequired`;
* bounded in-call retries (:func:`gcal.retry_budget.in_call_attempts`, within the job's retry
  budget) of connection errors, timeouts, 5xx and malformed or truncated bodies, and of nothing
  else: a 403/429 rate limit
  is raised at once as :class:`~gcal.errors.RateLimited` with ``retry_after`` from the
  ``Retry-After`` header, for the job layer to defer. Errors of the gate and the token
  source pass through untouched: they have retry policies of their own. (aiohttp's own
  re-send of an idempotent request on a dropped connection is switched off where the session
  is made, :mod:`gcal.services`.)
* every Google failure becomes a domain error in :func:`gcal.errors.from_google_response`.

Requests are built as plain URLs rather than with googleapiclient's discovery model
(google-api-facts §0.3): the handful of methods used here are a path and a few parameters
each, and building them directly keeps request construction free of httplib2 objects and
the discovery document. Responses are parsed with orjson and checked for shape only (no
per-event models): a listing of 2,500 events costs one parse.

An insert is retried like any other call. Its body always carries a client-chosen ``id``
(:meth:`gcal.event_writes.EventInput.for_insert`), so a retry after a lost answer gets 409
:class:`~gcal.errors.Conflict` rather than creating the event twice.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
import simdjson

from gcal.errors import GcalError, InvalidRequest, UpstreamUnavailable, from_google_response
from gcal.event_queries import EventQuery
from gcal.event_writes import EventWrite
from gcal.observer import NO_OBSERVER, GoogleObserver
from gcal.retry_budget import in_call_attempts, spend_on_retry
from gcal.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


class TokenSource(Protocol):
    """Valid access tokens per user (:class:`gcal.accounts.Accounts` is one)."""

    async def access_token(self, user_id: str, *, rejected: str | None = None) -> str: ...


class RequestGate(Protocol):
    """Called before every request to Google (the shared rate limiter plugs in here)."""

    async def acquire(self, user_id: str) -> None: ...  # may raise RateLimited/QuotaExhausted


@dataclass(frozen=True)
class EventsPage:
    """One page of events.list."""

    items: list[dict[str, Any]]  # Google Event resources, as parsed JSON
    next_page_token: str | None
    next_sync_token: str | None
    time_zone: str | None

    @classmethod
    def parse(cls, body: bytes) -> EventsPage:
        """An events.list answer; :class:`UpstreamUnavailable` if it is not one."""
        payload = _json_object(body)
        return cls(
            items=_items(payload),
            next_page_token=_optional_str(payload, "nextPageToken"),
            next_sync_token=_optional_str(payload, "nextSyncToken"),
            time_zone=_optional_str(payload, "timeZone"),
        )


# One simdjson parser for the process: it allocates its buffers once, not per page (half the
# parse of a 250-event page). Its documents are views into those buffers, so simdjson refuses
# to reuse it while one is still referenced; should that happen, the page gets its own parser.
_PARSER = simdjson.Parser()


def _parse_json(body: bytes) -> object:
    """simdjson's document of ``body``; ValueError for anything simdjson will not read."""
    try:
        return _PARSER.parse(body)
    except RuntimeError:  # an earlier document is still alive (simdjson's reuse check)...
        try:
            return simdjson.Parser().parse(body)
        except RuntimeError as err:  # ...or JSON it will not represent (an integer past 64 bits)
            raise ValueError(str(err)) from err


@dataclass(frozen=True)
class RawEventsPage:
    """One page of events.list with its events left as Google's JSON: ``items_json`` is the
    ``items`` array, minified, never turned into Python objects (:meth:`CalendarClient.
    list_events_raw`: for passing a page on as it is, at a fraction of the cost)."""

    items_json: bytes  # a JSON array of Event objects ("[]" when Google sent none)
    count: int
    next_page_token: str | None
    next_sync_token: str | None
    time_zone: str | None

    @classmethod
    def parse(cls, body: bytes) -> RawEventsPage:
        """An events.list answer; :class:`UpstreamUnavailable` if it is not one. The items
        are checked to be an array of objects by its first element only (the rest pass
        through as Google sent them)."""
        return _spliced(body) or _copied(body)


_PAGE_TOKENS = ("nextPageToken", "nextSyncToken", "timeZone")  # a page's fields beside its items
# Where a page's items array starts: the first key "items" whose value is an array. Usually
# the top-level one; :func:`_spliced` proves it is before trusting it.
_ITEMS_VALUE = re.compile(rb'"items"\s*:\s*(?=\[)')
# Stands in for the items array while the rest of the page is parsed.
_STAND_IN = "gcal-jobs: the items array"
_STAND_IN_JSON = orjson.dumps(_STAND_IN)


def _spliced(body: bytes) -> RawEventsPage | None:
    """The page with its items array cut out of Google's bytes, or None where that cannot be
    done safely (the caller then takes :func:`_copied`'s way).

    The cut is proven, not guessed: the bytes around the candidate array, with a string
    standing in for it, must parse as an object whose ``items`` is that string (so the
    candidate sits exactly where the top-level ``items`` value does), and the candidate alone
    must parse as an array. A JSON value put where another stood leaves a valid document
    valid, so the page is checked whole: nothing Google sent goes unparsed, yet the events,
    nearly all of a page, are parsed once and never written again (a third of the cost of
    parsing the page and taking a minified copy of its array, which cost more than the
    parse)."""
    found = _ITEMS_VALUE.search(body)
    if found is None:
        return None
    start, end = found.end(), body.rfind(b"]") + 1
    try:
        rest = orjson.loads(b"".join((body[:start], _STAND_IN_JSON, body[end:])))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(rest, dict) or rest.get("items") != _STAND_IN:
        return None
    items_json = body[start:end]
    try:
        items = _parse_json(items_json)
        if not isinstance(items, simdjson.Array):
            return None
        # Checked here, not in a helper shared with _copied: a helper's frame, kept by the
        # traceback of its error, would hold the array and block the shared parser's reuse.
        count = len(items)
        if count and not isinstance(items[0], simdjson.Object):
            raise UpstreamUnavailable("Google Calendar sent malformed items")
    except ValueError:  # simdjson: the candidate is not one JSON value
        return None
    finally:
        items = None  # a view into the shared parser: it may not outlive the parse
    page_token, sync_token, time_zone = (_optional_str(rest, name) for name in _PAGE_TOKENS)
    return RawEventsPage(items_json, count, page_token, sync_token, time_zone)


def _copied(body: bytes) -> RawEventsPage:
    """The page parsed whole, its items array a minified copy made by simdjson."""
    try:
        doc = _parse_json(body)
        if not isinstance(doc, simdjson.Object):
            raise UpstreamUnavailable("Google Calendar sent a response that is not an object")
        items = doc.get("items")
        if items is None:
            items_json, count = b"[]", 0
        elif isinstance(items, simdjson.Array):
            mini: bytes | str = items.mini  # bytes (typed str in its stubs)
            items_json = mini if isinstance(mini, bytes) else mini.encode()
            count = len(items)
            if count and not isinstance(items[0], simdjson.Object):
                raise UpstreamUnavailable("Google Calendar sent malformed items")
        else:
            raise UpstreamUnavailable("Google Calendar sent malformed items")
        tokens = [doc.get(name) for name in _PAGE_TOKENS]
    except ValueError as err:  # simdjson: not JSON (truncated, an HTML error page...)
        raise UpstreamUnavailable("Google Calendar sent a malformed response body") from err
    finally:
        doc = items = None  # views into the shared parser: none may outlive the parse
    page_token, sync_token, time_zone = (_text(token) for token in tokens)
    return RawEventsPage(items_json, count, page_token, sync_token, time_zone)


# Google's name for each request this client sends (HTTP method, path under the API base),
# for metrics: bounded label values, never an id from the path.
_SEGMENT = "[^/]+"
_API_METHODS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (http_method, re.compile(path.replace("{}", _SEGMENT)), name)
    for http_method, path, name in (
        ("POST", "calendars/{}/events/watch", "events.watch"),
        ("GET", "calendars/{}/events/{}/instances", "events.instances"),
        ("GET", "calendars/{}/events", "events.list"),
        ("POST", "calendars/{}/events", "events.insert"),
        ("GET", "calendars/{}/events/{}", "events.get"),
        ("PATCH", "calendars/{}/events/{}", "events.patch"),
        ("PUT", "calendars/{}/events/{}", "events.update"),
        ("DELETE", "calendars/{}/events/{}", "events.delete"),
        ("GET", "calendars/{}", "calendars.get"),
        ("GET", "users/me/calendarList", "calendarList.list"),
        ("POST", "freeBusy", "freebusy.query"),
        ("POST", "channels/stop", "channels.stop"),
    )
)


def api_method(http_method: str, path: str) -> str:
    """Google's method name for a request (``events.list``), or ``other``."""
    for method, pattern, name in _API_METHODS:
        if method == http_method and pattern.fullmatch(path):
            return name
    return "other"


@dataclass(frozen=True)
class _Request:
    """One API request, as sent on every attempt."""

    api: str  # Google's method name, for the observer
    method: str
    url: str
    params: list[tuple[str, str]]
    data: bytes | None
    headers: dict[str, str]


class _Unauthorized(Exception):
    """A 401: the token was refused. Not retried by the transient-failure loop."""

    def __init__(self, error: GcalError) -> None:
        super().__init__(error.message)
        self.error = error


def retry_after_seconds(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)  # HTTP-dates are GMT (RFC 9110 §5.6.7)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def _segment(value: str) -> str:
    return quote(value, safe="")


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except ValueError as err:
        raise UpstreamUnavailable("Google Calendar sent a malformed response body") from err
    if not isinstance(value, dict):
        raise UpstreamUnavailable("Google Calendar sent a response that is not a JSON object")
    return value


def _optional_str(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise UpstreamUnavailable(f"Google Calendar sent a malformed {name}")
    return value


def _items(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = payload.get("items", [])  # absent when a fields projection leaves it out
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UpstreamUnavailable("Google Calendar sent malformed items")
    return items


def _nothing(body: bytes) -> None:
    return None


def _text(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise UpstreamUnavailable("Google Calendar sent a malformed page token or zone")
    return value


def _list_params(
    query: EventQuery, page_token: str | None, sync_token: str | None, fields: str | None
) -> list[tuple[str, str]]:
    params = query.to_params()
    if sync_token is not None:
        conflicts = query.sync_conflicts()
        if conflicts:
            raise InvalidRequest("a sync token cannot be combined with " + ", ".join(conflicts))
        params.append(("syncToken", sync_token))
    if page_token is not None:
        params.append(("pageToken", page_token))
    if fields is not None:
        params.append(("fields", fields))
    # Google indents its JSON unless told not to: a page's events pass on as Google's bytes
    # (RawEventsPage), so they come without whitespace: a fifth fewer bytes than indented.
    params.append(("prettyPrint", "false"))
    return params


def _rfc3339(moment: dt.datetime, name: str) -> str:
    if moment.utcoffset() is None:
        raise InvalidRequest(f"{name} must be timezone-aware")
    return moment.isoformat()


def _write_params(send_updates: str | None, write: EventWrite | None) -> dict[str, str]:
    params: dict[str, str] = {}
    if send_updates is not None:
        params["sendUpdates"] = send_updates
    if write is not None and write.conference_data_version is not None:
        params["conferenceDataVersion"] = str(write.conference_data_version)
    return params


class CalendarClient:
    """Calendar v3 methods on behalf of one linked user per call."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        tokens: TokenSource,
        gate: RequestGate | None = None,
        observer: GoogleObserver = NO_OBSERVER,
    ) -> None:
        self._base = str(settings.calendar_api_base)
        self._observer = observer
        self._session = session
        self._tokens = tokens
        self._gate = gate
        self._timeout = aiohttp.ClientTimeout(total=settings.http_timeout)

    # Events ----------------------------------------------------------------------------------

    async def list_events(
        self,
        user_id: str,
        calendar_id: str,
        query: EventQuery,
        *,
        page_token: str | None = None,
        sync_token: str | None = None,
        fields: str | None = None,
    ) -> EventsPage:
        """One page of events.list. Pass the same ``query`` with each ``page_token``."""
        params = _list_params(query, page_token, sync_token, fields)
        path = f"calendars/{_segment(calendar_id)}/events"
        return await self._call(user_id, "GET", path, EventsPage.parse, params=params)

    async def list_events_raw(
        self,
        user_id: str,
        calendar_id: str,
        query: EventQuery,
        *,
        page_token: str | None = None,
        fields: str | None = None,
    ) -> RawEventsPage:
        """:meth:`list_events`, with the events left as Google's JSON (to pass on as is)."""
        params = _list_params(query, page_token, None, fields)
        path = f"calendars/{_segment(calendar_id)}/events"
        return await self._call(user_id, "GET", path, RawEventsPage.parse, params=params)

    async def get_event(
        self, user_id: str, calendar_id: str, event_id: str, *, fields: str | None = None
    ) -> dict[str, Any]:
        """events.get; cancelled events are returned too."""
        params = {"fields": fields} if fields is not None else {}
        path = f"calendars/{_segment(calendar_id)}/events/{_segment(event_id)}"
        return await self._call(user_id, "GET", path, _json_object, params=params)

    async def insert_event(
        self,
        user_id: str,
        calendar_id: str,
        write: EventWrite,
        *,
        send_updates: str | None = None,
    ) -> dict[str, Any]:
        """events.insert."""
        params = _write_params(send_updates, write)
        path = f"calendars/{_segment(calendar_id)}/events"
        return await self._call(user_id, "POST", path, _json_object, params=params, body=write.body)

    async def patch_event(
        self,
        user_id: str,
        calendar_id: str,
        event_id: str,
        write: EventWrite,
        *,
        if_match: str | None = None,
        send_updates: str | None = None,
    ) -> dict[str, Any]:
        """events.patch; with ``if_match`` (an etag) a concurrent change is
        :class:`~gcal.errors.PreconditionFailed` instead of being overwritten."""
        params = _write_params(send_updates, write)
        path = f"calendars/{_segment(calendar_id)}/events/{_segment(event_id)}"
        headers = {"If-Match": if_match} if if_match is not None else {}
        return await self._call(
            user_id, "PATCH", path, _json_object, params=params, body=write.body, headers=headers
        )

    async def delete_event(
        self,
        user_id: str,
        calendar_id: str,
        event_id: str,
        *,
        if_match: str | None = None,
        send_updates: str | None = None,
    ) -> None:
        """events.delete; an event deleted before is :class:`~gcal.errors.Gone`."""
        params = _write_params(send_updates, None)
        path = f"calendars/{_segment(calendar_id)}/events/{_segment(event_id)}"
        headers = {"If-Match": if_match} if if_match is not None else {}
        await self._call(user_id, "DELETE", path, _nothing, params=params, headers=headers)

    async def watch_events(
        self,
        user_id: str,
        calendar_id: str,
        *,
        channel_id: str,
        address: str,
        token: str,
        expiration_ms: int,
    ) -> dict[str, Any]:
        """events.watch: Google posts to ``address`` when the calendar's events change.
        Answers the channel (``resourceId``, ``expiration`` as Google granted it)."""
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
            "expiration": expiration_ms,
        }
        path = f"calendars/{_segment(calendar_id)}/events/watch"
        return await self._call(user_id, "POST", path, _json_object, body=body)

    async def stop_channel(self, user_id: str, channel_id: str, resource_id: str) -> None:
        """channels.stop; a channel Google no longer knows is :class:`~gcal.errors.NotFound`."""
        body = {"id": channel_id, "resourceId": resource_id}
        await self._call(user_id, "POST", "channels/stop", _nothing, body=body)

    # Calendars -------------------------------------------------------------------------------

    async def list_calendars(self, user_id: str) -> list[dict[str, Any]]:
        """Every entry of the user's calendar list (all pages)."""
        entries: list[dict[str, Any]] = []
        seen: set[str] = set()
        params = {"maxResults": "250"}
        while True:
            payload = await self._call(
                user_id, "GET", "users/me/calendarList", _json_object, params=params
            )
            entries.extend(_items(payload))
            token = _optional_str(payload, "nextPageToken")
            if token is None:
                return entries
            if token in seen:
                raise UpstreamUnavailable("Google Calendar repeated a calendar-list page token")
            seen.add(token)
            params = {"maxResults": "250", "pageToken": token}

    async def free_busy(
        self,
        user_id: str,
        *,
        time_min: dt.datetime,
        time_max: dt.datetime,
        calendar_ids: Sequence[str],
        time_zone: str | None = None,
    ) -> dict[str, Any]:
        """freebusy.query: Google's ``calendar#freeBusy`` answer (busy periods per calendar)."""
        body: dict[str, Any] = {
            "timeMin": _rfc3339(time_min, "time_min"),
            "timeMax": _rfc3339(time_max, "time_max"),
            "items": [{"id": calendar_id} for calendar_id in calendar_ids],
        }
        if time_zone is not None:
            body["timeZone"] = time_zone
        return await self._call(user_id, "POST", "freeBusy", _json_object, body=body)

    # One call --------------------------------------------------------------------------------

    async def _call(
        self,
        user_id: str,
        method: str,
        path: str,
        parse: Callable[[bytes], T],
        *,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> T:
        """One API call: a round of retried requests, and one more round after a 401."""
        request = _Request(
            api=api_method(method, path),
            method=method,
            url=self._base + path,
            params=list(params.items() if isinstance(params, Mapping) else params or ()),
            data=orjson.dumps(body) if body is not None else None,
            headers=dict(headers or {}),
        )
        token = await self._tokens.access_token(user_id)
        try:
            return await self._round(user_id, request, token, parse)
        except _Unauthorized:
            log.info("calendar %s %s: access token refused, refreshing once", method, path)
        token = await self._tokens.access_token(user_id, rejected=token)
        try:
            return await self._round(user_id, request, token, parse)
        except _Unauthorized as refused:
            raise refused.error from None

    async def _round(
        self, user_id: str, request: _Request, token: str, parse: Callable[[bytes], T]
    ) -> T:
        """Requests with one token until one succeeds, fails for good, or the attempts end.

        The first request goes out before stamina's retry loop is built (that costs about
        20 us of CPU, and most calls succeed at once). Should it fail transiently, the failure
        is replayed as the loop's first attempt, so which failures are retried, the waits, the
        attempt count and stamina's retry logs are as if the loop had sent it.
        """
        # Outside the attempts: a gate refusal is the caller's to handle, never retried here.
        if self._gate is not None:
            await self._gate.acquire(user_id)
        try:
            return await self._attempt(request, token, parse)
        except UpstreamUnavailable as failed:
            first: UpstreamUnavailable | None = failed
        async for attempt in in_call_attempts():
            spend_on_retry(attempt)
            if first is None and self._gate is not None:
                await self._gate.acquire(user_id)
            with attempt:
                if first is not None:
                    replayed, first = first, None
                    raise replayed
                return await self._attempt(request, token, parse)
        raise AssertionError("unreachable")  # pragma: no cover - retry_context re-raises

    async def _attempt(self, request: _Request, token: str, parse: Callable[[bytes], T]) -> T:
        """One request: the parsed body, or the error Google's answer means."""
        status, body, retry_after = await self._send(request, token)
        if 200 <= status < 300:
            return parse(body)
        error = from_google_response(status, body, retry_after=retry_after)
        if status == 401:
            raise _Unauthorized(error)
        if error.retryable:
            log.info("calendar %s: Google answered %s (%s)", request.method, status, error.code)
        raise error

    async def _send(self, request: _Request, token: str) -> tuple[int, bytes, float | None]:
        """One HTTP exchange: status, body and ``Retry-After`` seconds."""
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if request.data is not None:
            headers["Content-Type"] = "application/json"
        headers.update(request.headers)
        started = time.perf_counter()
        try:
            async with self._session.request(
                request.method,
                request.url,
                params=request.params,
                data=request.data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,  # an Authorization header never follows a redirect
            ) as resp:
                body = await resp.read()
                self._observer.request(request.api, str(resp.status), time.perf_counter() - started)
                return resp.status, body, retry_after_seconds(resp.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError) as err:
            self._observer.request(request.api, "error", time.perf_counter() - started)
            # The exception's text may name the URL; never a header, so never the token.
            log.info("calendar %s: %s", request.method, type(err).__name__)
            raise UpstreamUnavailable(
                f"Google Calendar is unreachable ({type(err).__name__})"
            ) from err
