"""Recurring events: RRULE/EXRULE/RDATE/EXDATE expansion into instances, and instance ids.

A recurring event (a "master") is stored once, with ``recurrence`` lines (RFC 5545, no
DTSTART). Its instances are generated on demand, time-zone aware (``start.timeZone``), and
are named ``{masterId}_{YYYYMMDDTHHMMSSZ}`` (UTC original start), or ``{masterId}_{YYYYMMDD}``
for all-day events. A modified or cancelled instance is stored as its own event under the
instance id (with ``recurringEventId`` and ``originalStartTime``) and overrides the generated
one. Expansion is bounded by the caller's window and by a hard cap::

    series = Series.of(calendar, master)
    for original in series.originals(after=t0, before=t1, limit=100):
        resource = series.instance(original)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil.rrule import rrule, rruleset, rrulestr

from emulator.errors import bad_request
from emulator.eventtime import When, render_when, shifted, stored_when, zone
from emulator.state import Calendar, Event, etag_for

_INSTANCE_ID = re.compile(r"^(?P<master>[a-v0-9]+)_(?P<stamp>\d{8}(T\d{6}Z)?)$")
_UNTIL = re.compile(r"UNTIL=(\d{8})(T\d{6})?(Z?)", re.IGNORECASE)
# Iterations spent skipping occurrences before a window, at most (a guard for old dailies).
_MAX_SKIP = 200_000


def is_recurring(resource: dict[str, Any]) -> bool:
    return bool(resource.get("recurrence")) and "recurringEventId" not in resource


def split_instance_id(event_id: str) -> tuple[str, str] | None:
    """(master id, stamp) if ``event_id`` has the shape of an instance id."""
    match = _INSTANCE_ID.match(event_id)
    return (match["master"], match["stamp"]) if match else None


def check_rules(resource: dict[str, Any], calendar_zone: str) -> None:
    """400 unless ``resource``'s ``recurrence`` lines parse as rules for its start."""
    try:
        _rule_set(resource["recurrence"], _series_start(resource, calendar_zone))
    except (ValueError, TypeError, KeyError, OverflowError) as err:
        raise bad_request("Invalid recurrence rule.", reason="invalid") from err


def _series_start(resource: dict[str, Any], calendar_zone: str) -> When:
    start = stored_when(resource["start"], calendar_zone)
    if not start.all_day and start.time_zone:
        # Expand in the event's own zone, so instances keep their wall-clock time.
        start = When(start.moment.astimezone(zone(start.time_zone)), False, start.time_zone)
    return start


def _rule_set(lines: list[str], start: When) -> rruleset:
    """The recurrence set, with every date made comparable with ``start.moment``."""
    rules = rruleset()
    rules.rdate(start.moment)  # DTSTART is always an occurrence (RFC 5545 §3.8.5.3)
    has_rule = False
    for line in lines:
        name, _, value = line.partition(":")
        kind, *params = name.upper().split(";")
        if kind in ("RRULE", "EXRULE"):
            rule = rrulestr(_until(value, start), dtstart=start.moment)
            if not isinstance(rule, rrule):
                raise ValueError(line)
            if kind == "RRULE":
                rules.rrule(rule)
                has_rule = True
            else:
                rules.exrule(rule)
        elif kind in ("RDATE", "EXDATE"):
            for moment in _dates(value, params, start):
                if kind == "RDATE":
                    rules.rdate(moment)
                    has_rule = True
                else:
                    rules.exdate(moment)
        else:
            raise ValueError(line)
    if not has_rule:
        raise ValueError("no RRULE or RDATE")
    return rules


def _until(value: str, start: When) -> str:
    """Make UNTIL agree with DTSTART, as dateutil insists: UTC for timed events, floating for
    all-day ones. A floating UNTIL of a timed event is read in the event's time zone."""

    def fix(match: re.Match[str]) -> str:
        day, clock, utc = match[1], match[2] or "", match[3]
        if start.all_day:
            return f"UNTIL={day}{clock or 'T000000'}"
        if utc:
            return match[0]
        local = datetime.strptime(day + (clock or "T235959"), "%Y%m%dT%H%M%S")  # noqa: DTZ007 - localized below
        moment = local.replace(tzinfo=start.moment.tzinfo).astimezone(UTC)
        return f"UNTIL={moment:%Y%m%dT%H%M%S}Z"

    return _UNTIL.sub(fix, value)


def _dates(value: str, params: list[str], start: When) -> Iterator[datetime]:
    """RDATE/EXDATE values (``TZID=``, ``VALUE=DATE``, ``Z``) in ``start``'s kind of time."""
    tzid = next((p[5:] for p in params if p.startswith("TZID=")), None)
    for raw in value.split(","):
        text = raw.strip().upper()
        utc = text.endswith("Z")
        text = text.rstrip("Z")
        pattern = "%Y%m%dT%H%M%S" if "T" in text else "%Y%m%d"
        local = datetime.strptime(text, pattern)  # noqa: DTZ007 - localized below
        if start.all_day:
            yield local.replace(hour=0, minute=0, second=0)
        elif utc:
            yield local.replace(tzinfo=UTC).astimezone(start.moment.tzinfo)
        else:
            tz = (zone(tzid) if tzid else None) or start.moment.tzinfo
            yield local.replace(tzinfo=tz).astimezone(start.moment.tzinfo)


@dataclass(slots=True)
class Series:
    """A recurring event's rules, parsed once per change of the event."""

    master: Event
    rules: rruleset
    start: When
    duration: timedelta
    calendar_zone: str
    master_seq: int

    @classmethod
    def of(cls, calendar: Calendar, master: Event) -> Series:
        """The series of ``master``, cached in ``calendar.views`` until the master changes."""
        cache: dict[str, Series] = calendar.views.setdefault("series", {})
        found = cache.get(master.id)
        if found is not None and found.master is master and found.master_seq == master.seq:
            return found
        resource = master.resource
        start = _series_start(resource, calendar.time_zone)
        end = stored_when(resource["end"], calendar.time_zone)
        rules = _rule_set(resource["recurrence"], start)
        duration = end.moment - start.moment
        series = cls(master, rules, start, duration, calendar.time_zone, master.seq)
        cache[master.id] = series
        return series

    def _local(self, ts: float) -> datetime:
        """Epoch seconds as a datetime comparable with the occurrences."""
        if self.start.all_day:
            tz = zone(self.calendar_zone) or UTC
            return datetime.fromtimestamp(ts, tz).replace(tzinfo=None)
        return datetime.fromtimestamp(ts, UTC)

    def timestamp(self, original: datetime) -> float:
        return When(original, self.start.all_day, None).timestamp(self.calendar_zone)

    def originals(
        self, *, after: float | None = None, before: float | None = None, limit: int
    ) -> Iterator[datetime]:
        """Original starts of instances that end after ``after`` and start before ``before``
        (both exclusive, like events.list's timeMin/timeMax), at most ``limit`` of them."""
        lower = None if after is None else self._local(after) - self.duration
        upper = None if before is None else self._local(before)
        produced = skipped = 0
        for original in self.rules:
            if upper is not None and original >= upper:
                return
            if lower is not None and original <= lower:
                skipped += 1
                if skipped > _MAX_SKIP:
                    return
                continue
            yield original
            produced += 1
            if produced >= limit:
                return

    def contains(self, original: datetime) -> bool:
        found = self.rules.after(original, inc=True)
        return found is not None and found == original

    def original_of(self, stamp: str) -> datetime | None:
        """The original start named by an instance id's stamp, if it is an occurrence."""
        try:
            if self.start.all_day:
                original = datetime.strptime(stamp, "%Y%m%d")  # noqa: DTZ007 - all-day dates float
            else:
                moment = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                original = moment.astimezone(self.start.moment.tzinfo)
        except ValueError:
            return None
        return original if self.contains(original) else None

    def instance_id(self, original: datetime) -> str:
        if self.start.all_day:
            return f"{self.master.id}_{original:%Y%m%d}"
        return f"{self.master.id}_{original.astimezone(UTC):%Y%m%dT%H%M%SZ}"

    def instance(self, original: datetime) -> dict[str, Any]:
        """The generated instance starting at ``original``, in Google's Event shape."""
        master = self.master.resource
        instance_id = self.instance_id(original)
        resource = {k: v for k, v in master.items() if k != "recurrence"}
        resource["etag"] = etag_for(master.get("etag"), instance_id)
        resource["id"] = instance_id
        all_day, tz_name = self.start.all_day, self.start.time_zone
        resource["start"] = render_when(original, all_day, tz_name)
        resource["end"] = render_when(shifted(original, self.duration), all_day, tz_name)
        resource["recurringEventId"] = self.master.id
        resource["originalStartTime"] = render_when(original, all_day, tz_name)
        return resource
