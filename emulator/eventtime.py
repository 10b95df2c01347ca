"""Event times: RFC 3339 moments, ``EventDateTime`` values, and the spans of stored events.

Owns how the emulator reads and writes times (google-api-facts §4.1/§4.2): ``timeMin``-style
RFC 3339 values need an offset; an ``EventDateTime`` is a ``date`` (all-day, in the calendar's
zone) XOR a ``dateTime`` (with an offset, or local time plus an IANA ``timeZone``). A stored
event's (start, end) is parsed once and cached on the event::

    start, end = span(event, calendar.time_zone)  # epoch seconds
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from emulator.errors import bad_request, required
from emulator.state import Event

# RFC 3339 with a mandatory offset, as events.list wants for timeMin/timeMax (§4.1).
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?$")


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo | None:
    """The IANA time zone called ``name``, or None if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def rfc3339_ms(ts: float) -> str:
    """Google's timestamp format for ``created``/``updated``: ``2024-05-01T12:00:00.000Z``."""
    moment = datetime.fromtimestamp(ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_rfc3339(value: str) -> float | None:
    """Epoch seconds of an RFC 3339 time *with* an offset; None if it is not one."""
    if not _RFC3339.match(value):
        return None
    try:
        return _fromiso(value).timestamp()
    except ValueError:
        return None


def _fromiso(value: str) -> datetime:
    # fromisoformat takes at most 6 fractional digits; RFC 3339 allows more.
    head, dot, rest = value.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip(string.digits))
        rest = rest[: min(digits, 6)] + rest[digits:]
        value = f"{head}.{rest}"
    return datetime.fromisoformat(value.upper() if value[-1:] in "zZ" else value)


# --------------------------------------------------------------------------------------------
# Times of an event


@dataclass(frozen=True, slots=True)
class When:
    """One parsed ``EventDateTime``: an aware moment, or a date (all-day)."""

    moment: datetime  # aware for timed events; naive midnight for all-day ones
    all_day: bool
    time_zone: str | None

    def timestamp(self, calendar_zone: str) -> float:
        if not self.all_day:
            return self.moment.timestamp()
        # An all-day event spans its dates in the calendar's time zone.
        return self.moment.replace(tzinfo=zone(calendar_zone) or UTC).timestamp()


def parse_when(value: Any, which: str) -> When:
    """Validate one ``start``/``end`` of a client body (google-api-facts §4.2)."""
    if value is None:
        raise required(which, f"Missing {which} time.")
    if not isinstance(value, dict):
        raise bad_request(f"Invalid {which} time.", reason="invalid")
    tz_name = value.get("timeZone")
    if tz_name is not None and (not isinstance(tz_name, str) or zone(tz_name) is None):
        raise bad_request(f"Invalid time zone definition for {which} time.", reason="invalid")
    day, moment = value.get("date"), value.get("dateTime")
    if (day is None) == (moment is None):
        # Neither or both: Google wants exactly one [I: message].
        if day is None:
            raise required(which, f"Missing {which} time.")
        raise bad_request(f"Invalid {which} time.", reason="invalid")
    if day is not None:
        if not isinstance(day, str) or not _DATE.match(day):
            raise bad_request(f"Invalid {which} time.", reason="invalid")
        try:
            parsed = date.fromisoformat(day)
        except ValueError as err:
            raise bad_request(f"Invalid {which} time.", reason="invalid") from err
        return When(datetime(parsed.year, parsed.month, parsed.day), True, tz_name)  # noqa: DTZ001 - a date, not a moment
    if not isinstance(moment, str):
        raise bad_request(f"Invalid {which} time.", reason="invalid")
    if _RFC3339.match(moment):
        try:
            return When(_fromiso(moment), False, tz_name)
        except ValueError as err:
            raise bad_request(f"Invalid {which} time.", reason="invalid") from err
    if not _LOCAL_DATETIME.match(moment):
        raise bad_request(f"Invalid {which} time.", reason="invalid")
    # "A time zone offset is required unless a time zone is explicitly specified in timeZone."
    if tz_name is None:
        raise bad_request(f"Missing time zone definition for {which} time.", reason="required")
    try:
        local = _fromiso(moment)
    except ValueError as err:
        raise bad_request(f"Invalid {which} time.", reason="invalid") from err
    return When(local.replace(tzinfo=zone(tz_name)), False, tz_name)


def stored_when(value: dict[str, Any], calendar_zone: str) -> When:
    """Parse a stored (already valid) ``EventDateTime`` without re-validating it."""
    day = value.get("date")
    if day is not None:
        parsed = date.fromisoformat(day)
        return When(datetime(parsed.year, parsed.month, parsed.day), True, None)  # noqa: DTZ001 - a date
    moment = _fromiso(value["dateTime"])
    tz_name = value.get("timeZone")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone(tz_name or calendar_zone) or UTC)
    return When(moment, False, tz_name)


def span(event: Event, calendar_zone: str) -> tuple[float, float]:
    """(start, end) of a stored event in epoch seconds, parsed once and cached on the event."""
    cached = event.span
    if cached is None:
        resource = event.resource
        try:
            start = stored_when(resource["start"], calendar_zone).timestamp(calendar_zone)
            end = stored_when(resource["end"], calendar_zone).timestamp(calendar_zone)
        except (KeyError, TypeError, ValueError):
            # A bare tombstone (``id`` and ``status`` only) has no times: it falls in no window.
            start = end = 0.0
        cached = event.span = (start, end)
    return cached


def render_when(moment: datetime, all_day: bool, time_zone: str | None) -> dict[str, Any]:
    """An ``EventDateTime`` for ``moment`` (used for recurring instances)."""
    if all_day:
        return {"date": moment.date().isoformat()}
    rendered: dict[str, Any] = {"dateTime": moment.isoformat()}
    if time_zone:
        rendered["timeZone"] = time_zone
    return rendered


def shifted(moment: datetime, delta: timedelta) -> datetime:
    """``moment + delta`` in elapsed time (not wall time across a DST change)."""
    if moment.tzinfo is None:
        return moment + delta
    return (moment.astimezone(UTC) + delta).astimezone(moment.tzinfo)
