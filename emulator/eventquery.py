"""Event queries: events.list and events.instances filtering, ordering, paging and sync tokens.

Owns the rules of google-api-facts §4.1: ``timeMin`` bounds event *ends* and ``timeMax``
event *starts* (both exclusive), ``singleEvents`` expansion, ``orderBy``, ``maxResults``,
``pageToken``/``nextPageToken`` (``nextSyncToken`` only on the last page), ``syncToken``
(changes since the token, with ``cancelled`` tombstones; 410 once expired), ``showDeleted``,
``updatedMin``, ``q``, ``iCalUID`` and extended-property filters.

Page and sync tokens are :mod:`emulator.cursors`.

Speed matters (the product's benchmarks list through the emulator): each stored event is
serialized once (``Event.json_cache``), its times parsed once (``Event.span``), the calendar's
events are kept sorted by id per change (``Calendar.views``), a page body is the cached
item bytes joined, and the last few page bodies of a calendar are kept until it changes (a
benchmark's readers ask for the same page over and over; Google's own cost is not on this
machine, the emulator's is).
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from math import inf
from typing import Any

from multidict import MultiMapping

from emulator.api import COMPACT, wants_compact
from emulator.config import EmulatorConfig
from emulator.cursors import Cursor, Key, page_token, parse_cursor, sync_seq, sync_token
from emulator.errors import ApiError, bad_request, invalid_parameter, time_range_empty
from emulator.eventtime import parse_rfc3339, rfc3339_ms, span, zone
from emulator.recurrence import Series, is_recurring
from emulator.state import Calendar, Event, etag_for

DEFAULT_MAX_RESULTS = 250
MAX_MAX_RESULTS = 2500
DEFAULT_REMINDERS = ({"method": "popup", "minutes": 10},)
# Parameters that cannot accompany a syncToken (discovery document, verbatim list, §4.1).
SYNC_FORBIDDEN = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
# Parameters that do not change what a listing returns (left out of a page token's binding).
_UNBOUND = frozenset(
    {"pageToken", "maxResults", "fields", "prettyPrint", "alt", "quotaUser", "key", "userIp"}
)


@dataclass(frozen=True, slots=True)
class ListQuery:
    """The parameters of one events.list (or events.instances) call, validated."""

    time_min: float | None = None
    time_max: float | None = None
    single_events: bool = False
    order_by: str | None = None
    max_results: int = DEFAULT_MAX_RESULTS
    show_deleted: bool = False
    updated_min: str | None = None  # as rfc3339_ms, comparable with ``updated`` strings
    text: str | None = None
    ical_uid: str | None = None
    private_props: tuple[tuple[str, str], ...] = ()
    shared_props: tuple[tuple[str, str], ...] = ()
    event_types: frozenset[str] | None = None
    time_zone: str | None = None
    since: int | None = None  # the syncToken's sequence
    cursor: Cursor | None = None
    binding: str = ""
    compact: bool = False  # prettyPrint=false: the page without whitespace


# --------------------------------------------------------------------------------------------
# Parameters


def _flag(query: MultiMapping[str], name: str) -> bool:
    value = query.get(name)
    if value is None:
        return False
    if value.lower() not in ("true", "false"):
        raise invalid_parameter(name)
    return value.lower() == "true"


def _time(query: MultiMapping[str], name: str) -> float | None:
    value = query.get(name)
    if value is None:
        return None
    parsed = parse_rfc3339(value)
    if parsed is None:
        # timeMin/timeMax must be RFC 3339 with an offset (google-api-facts §4.1).
        raise bad_request("Bad Request", location=name)
    return parsed


def _properties(query: MultiMapping[str], name: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for value in query.getall(name, []):
        key, sep, wanted = value.partition("=")
        if not sep or not key:
            raise invalid_parameter(name)
        pairs.append((key, wanted))
    return tuple(pairs)


def _binding(calendar_id: str, query: MultiMapping[str], scope: str) -> str:
    items = sorted((k, v) for k, v in query.items() if k not in _UNBOUND)
    digest = hashlib.blake2b(repr((calendar_id, scope, items)).encode(), digest_size=6)
    return digest.hexdigest()


def parse_query(
    query: MultiMapping[str], calendar: Calendar, config: EmulatorConfig, *, scope: str
) -> ListQuery:
    """Validate events.list parameters (``scope`` names the method a page token is for)."""
    sync_token = query.get("syncToken")
    if sync_token is not None:
        for name in SYNC_FORBIDDEN:
            if name in query:
                raise ApiError(
                    config.sync_token_forbidden_param_status,
                    "invalid",
                    f"Sync token cannot be used with the {name} parameter.",
                    location=name,
                    location_type="parameter",
                )
    max_results = DEFAULT_MAX_RESULTS
    if "maxResults" in query:
        try:
            max_results = int(query["maxResults"])
        except ValueError as err:
            raise invalid_parameter("maxResults") from err
        # googleapiclient does not enforce minimum/maximum (google-api-facts §3.1).
        if not 1 <= max_results <= MAX_MAX_RESULTS:
            raise invalid_parameter(
                "maxResults",
                f"Invalid value '{max_results}'. Values must be within the range: [1, 2500]",
            )
    time_min, time_max = _time(query, "timeMin"), _time(query, "timeMax")
    if time_min is not None and time_max is not None and time_max <= time_min:
        raise time_range_empty()
    single_events = _flag(query, "singleEvents")
    order_by = query.get("orderBy")
    if order_by not in (None, "startTime", "updated"):
        raise invalid_parameter("orderBy")
    if order_by == "startTime" and not single_events:
        raise bad_request("The requested ordering is not available for the particular query.")
    updated_min = _time(query, "updatedMin")
    time_zone = query.get("timeZone")
    if time_zone is not None and zone(time_zone) is None:
        raise invalid_parameter("timeZone")
    event_types = query.getall("eventTypes", [])
    binding = _binding(calendar.id, query, scope)
    since = None if sync_token is None else sync_seq(sync_token, calendar)
    cursor = None
    if "pageToken" in query:
        # events.instances pages in start order whatever orderBy says.
        key_order = "startTime" if scope == "events.instances" else order_by
        cursor = parse_cursor(query["pageToken"], calendar, binding, key_order)
    return ListQuery(
        time_min=time_min,
        time_max=time_max,
        single_events=single_events,
        order_by=order_by,
        max_results=max_results,
        show_deleted=_flag(query, "showDeleted"),
        updated_min=None if updated_min is None else rfc3339_ms(updated_min),
        text=(query.get("q") or "").lower() or None,
        ical_uid=query.get("iCalUID"),
        private_props=_properties(query, "privateExtendedProperty"),
        shared_props=_properties(query, "sharedExtendedProperty"),
        event_types=frozenset(event_types) if event_types else None,
        time_zone=time_zone,
        since=since,
        cursor=cursor,
        binding=binding,
        compact=wants_compact(query),
    )


# --------------------------------------------------------------------------------------------
# Rows


# One stored event as a listing sees it: id, start, end, cancelled, recurring master, event.
_Row = tuple[str, float, float, bool, bool, Event]


@dataclass(frozen=True, slots=True)
class _Index:
    """A calendar's events sorted by id with their times parsed, valid for one change
    sequence (and time zone: all-day events span their dates in the calendar's zone)."""

    seq: int
    zone: str
    rows: list[_Row]
    ids: list[str]
    updated: str


@dataclass(frozen=True, slots=True)
class _Pages:
    """Page bodies already answered, valid while the calendar and the config are as they were
    (``state``): bodies are a function of those and the query alone (tokens are too)."""

    state: tuple[object, ...]
    bodies: dict[ListQuery, bytes]


_PAGES_KEPT = 64  # per calendar; a full cache starts over


def _index(calendar: Calendar) -> _Index:
    events = calendar.events  # materializes bulk-seeded events first
    found = calendar.views.get("by_id")
    if isinstance(found, _Index) and found.seq == calendar.seq and found.zone == calendar.time_zone:
        return found
    rows: list[_Row] = []
    tz = calendar.time_zone
    for event in sorted(events.values(), key=lambda e: e.id):
        start, end = span(event, tz)
        rows.append((event.id, start, end, event.cancelled, is_recurring(event.resource), event))
    updated = max((str(r[5].resource.get("updated", "")) for r in rows), default="")
    index = _Index(calendar.seq, tz, rows, [r[0] for r in rows], updated)
    calendar.views["by_id"] = index
    return index


def item_json(event: Event) -> bytes:
    """``event`` serialized once per change."""
    cached = event.json_cache
    if cached is None:
        cached = event.json_cache = json.dumps(event.resource).encode()
    return cached


def tombstone(resource: dict[str, Any]) -> dict[str, Any]:
    """What a sync shows of a cancelled event: its id (and instance identity), no details."""
    stub = {
        "kind": "calendar#event",
        "etag": resource.get("etag"),
        "id": resource["id"],
        "status": "cancelled",
    }
    for name in ("recurringEventId", "originalStartTime"):
        if name in resource:
            stub[name] = resource[name]
    return stub


def _text_of(resource: dict[str, Any]) -> str:
    parts = [str(resource.get(name, "")) for name in ("summary", "description", "location")]
    people = [*resource.get("attendees", []), resource.get("organizer") or {}]
    for person in people:
        if isinstance(person, dict):
            parts.append(str(person.get("email", "")))
            parts.append(str(person.get("displayName", "")))
    return "\n".join(parts).lower()


def _props_match(resource: dict[str, Any], scope: str, wanted: tuple[tuple[str, str], ...]) -> bool:
    if not wanted:
        return True
    props = (resource.get("extendedProperties") or {}).get(scope) or {}
    return all(props.get(name) == value for name, value in wanted)


class _Listing:
    """One events.list run over a calendar: which rows, in which order."""

    def __init__(self, calendar: Calendar, query: ListQuery, config: EmulatorConfig) -> None:
        self.calendar = calendar
        self.query = query
        self.config = config
        self.zone = calendar.time_zone

    def _wanted(self, event: Event) -> bool:
        """Whether a stored event belongs in the listing (before time-window checks)."""
        q, resource = self.query, event.resource
        if q.since is not None and event.seq <= q.since:
            return False
        if q.updated_min is not None and str(resource.get("updated", "")) < q.updated_min:
            return False
        if q.ical_uid is not None and resource.get("iCalUID") != q.ical_uid:
            return False
        if q.event_types is not None and resource.get("eventType", "default") not in q.event_types:
            return False
        if q.text is not None and q.text not in _text_of(resource):
            return False
        return _props_match(resource, "private", q.private_props) and _props_match(
            resource, "shared", q.shared_props
        )

    def _series_in_window(self, master: Event) -> bool:
        q = self.query
        if q.time_min is None and q.time_max is None:
            return True
        originals = Series.of(self.calendar, master).originals(
            after=q.time_min, before=q.time_max, limit=1
        )
        return next(originals, None) is not None

    def _key(self, row: _Row) -> Key:
        order_by = self.query.order_by
        if order_by is None:
            return row[0]
        if order_by == "updated":
            return (str(row[5].resource.get("updated", "")), row[0])
        return (row[1], row[0])

    def _instances(self, master: Event) -> Iterator[tuple[Key, bytes]]:
        q = self.query
        series = Series.of(self.calendar, master)
        events = self.calendar.events
        updated = str(master.resource.get("updated", ""))
        for original in series.originals(
            after=q.time_min, before=q.time_max, limit=self.config.recurrence_max_instances
        ):
            instance_id = series.instance_id(original)
            if instance_id in events:
                continue  # a stored exception stands in for it
            if self.query.order_by == "startTime":
                key: Key = (series.timestamp(original), instance_id)
            elif self.query.order_by == "updated":
                key = (updated, instance_id)
            else:
                key = instance_id
            yield key, json.dumps(series.instance(original)).encode()

    def rows(self) -> Iterator[tuple[Key, bytes]]:
        """(key, item JSON) of every item of the listing, in id order.

        The hot path of the emulator: kept to local variables and one tuple per event.
        """
        q = self.query
        index = _index(self.calendar)
        first = 0
        if q.cursor is not None and self.presorted:
            first = bisect.bisect_right(index.ids, q.cursor.after)
        # Deleted events show in syncs and updatedMin queries whatever showDeleted says, but
        # stripped to a tombstone unless showDeleted (google-api-facts §4.1).
        changes = q.since is not None or q.updated_min is not None
        show_cancelled = q.show_deleted or changes
        strip_cancelled = changes and not q.show_deleted
        filtered = changes or bool(
            q.ical_uid or q.event_types or q.text or q.private_props or q.shared_props
        )
        low = -inf if q.time_min is None else q.time_min
        high = inf if q.time_max is None else q.time_max
        single, default_order = q.single_events, q.order_by is None
        for row in index.rows[first:]:
            event_id, start, end, cancelled, recurring, event = row
            if cancelled and not show_cancelled:
                continue
            if filtered and not self._wanted(event):
                continue
            if recurring and not cancelled:
                if single:
                    yield from self._instances(event)
                    continue
                if not self._series_in_window(event):
                    continue
            elif start >= high or end <= low:
                continue
            if cancelled and strip_cancelled:
                body = json.dumps(tombstone(event.resource)).encode()
            else:
                body = event.json_cache or item_json(event)
            yield (event_id if default_order else self._key(row)), body

    @property
    def presorted(self) -> bool:
        """Rows come out in key order already (no sort needed, early stop possible)."""
        return self.query.order_by is None and not self.query.single_events


def paginate(
    rows: Iterator[tuple[Key, bytes]], after: Key | None, limit: int, presorted: bool
) -> tuple[list[bytes], Key | None]:
    """Up to ``limit`` rows after the cursor, and the key to resume from (None: last page)."""
    if presorted:
        picked = []
        for row in rows:
            picked.append(row)
            if len(picked) > limit:
                break
    else:
        picked = sorted((r for r in rows if after is None or r[0] > after), key=lambda r: r[0])
    if len(picked) > limit:
        return [body for _, body in picked[:limit]], picked[limit - 1][0]
    return [body for _, body in picked], None


def envelope(
    calendar: Calendar, items: list[bytes], time_zone: str | None, extra: dict[str, Any]
) -> bytes:
    """A ``calendar#events`` body around already-serialized items."""
    head: dict[str, Any] = {
        "kind": "calendar#events",
        "etag": etag_for(calendar.id, calendar.seq),
        "summary": calendar.summary,
    }
    if calendar.description:
        head["description"] = calendar.description
    head["updated"] = _index(calendar).updated or rfc3339_ms(0)
    head["timeZone"] = time_zone or calendar.time_zone
    head["accessRole"] = "owner"
    head["defaultReminders"] = list(DEFAULT_REMINDERS)
    head.update(extra)
    opening = json.dumps(head).encode()[:-1]
    return b"".join((opening, b', "items": [', b", ".join(items), b"]}"))


def list_events(calendar: Calendar, query: ListQuery, config: EmulatorConfig) -> bytes:
    """The body of one events.list page."""
    # Bulk-seeded events take their sequence numbers as they materialize: before the
    # sequence is read, or the nextSyncToken would hand them all out again.
    calendar.materialize()
    state = (
        calendar.seq,
        calendar.sync_floor,
        calendar.time_zone,
        calendar.summary,
        calendar.description,
        config,
    )
    pages = calendar.views.get("pages")
    if not isinstance(pages, _Pages) or pages.state != state:
        pages = calendar.views["pages"] = _Pages(state, {})
    body = pages.bodies.get(query)
    if body is None:
        if len(pages.bodies) >= _PAGES_KEPT:
            pages.bodies.clear()
        body = _list_events(calendar, query, config)
        if query.compact:  # once per page and change, as the page itself
            body = json.dumps(json.loads(body), separators=COMPACT).encode()
        pages.bodies[query] = body
    return body


def _list_events(calendar: Calendar, query: ListQuery, config: EmulatorConfig) -> bytes:
    cursor = query.cursor
    seq, floor = (cursor.seq, cursor.floor) if cursor else (calendar.seq, calendar.sync_floor)
    listing = _Listing(calendar, query, config)
    after = cursor.after if cursor else None
    items, last = paginate(listing.rows(), after, query.max_results, listing.presorted)
    if last is not None:
        extra = {"nextPageToken": page_token(calendar, query.binding, seq, floor, last)}
    else:
        # nextSyncToken only on the last page (google-api-facts §4.1).
        extra = {"nextSyncToken": sync_token(calendar, seq, floor)}
    return envelope(calendar, items, query.time_zone, extra)


def list_instances(
    calendar: Calendar, master: Event, query: ListQuery, config: EmulatorConfig
) -> bytes:
    """The body of one events.instances page: the series' instances in start order."""
    rows: list[tuple[Key, bytes]] = []
    zone_name = calendar.time_zone
    if is_recurring(master.resource):
        series = Series.of(calendar, master)
        events = calendar.events
        for original in series.originals(
            after=query.time_min, before=query.time_max, limit=config.recurrence_max_instances
        ):
            instance_id = series.instance_id(original)
            if instance_id not in events:
                resource = series.instance(original)
                rows.append(
                    ((series.timestamp(original), instance_id), json.dumps(resource).encode())
                )
        for event in events.values():
            if event.resource.get("recurringEventId") != master.id:
                continue
            if event.cancelled and not query.show_deleted:
                continue
            start, end = span(event, zone_name)
            if query.time_max is not None and start >= query.time_max:
                continue
            if query.time_min is not None and end <= query.time_min:
                continue
            rows.append(((start, event.id), item_json(event)))
    else:
        rows.append(((span(master, zone_name)[0], master.id), item_json(master)))
    cursor = query.cursor
    after = cursor.after if cursor else None
    items, last = paginate(iter(rows), after, query.max_results, presorted=False)
    extra: dict[str, Any] = {}
    if last is not None:
        seq, floor = (cursor.seq, cursor.floor) if cursor else (calendar.seq, calendar.sync_floor)
        extra["nextPageToken"] = page_token(calendar, query.binding, seq, floor, last)
    return envelope(calendar, items, query.time_zone, extra)
