"""Google Calendar's OAuth scopes, and the capabilities (:class:`ScopeNeed`) jobs declare.

A job declares what it needs ("read events"), not a scope: each need names the narrowest
scope that grants it and the broader ones that also do (google-api-facts §1.7, from the
discovery document's per-method ``scopes``). The scopes a deployment asks users for are then
derived, least privilege first, from the needs of the jobs it runs::

    least_privilege([READ_EVENTS, WRITE_EVENTS, READ_CALENDAR_LIST])
    # ("https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    #  "https://www.googleapis.com/auth/calendar.events")

``calendar.events`` covers reading events too, so ``calendar.events.readonly`` is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PREFIX = "https://www.googleapis.com/auth/"
CALENDAR = PREFIX + "calendar"
CALENDAR_READONLY = PREFIX + "calendar.readonly"
EVENTS = PREFIX + "calendar.events"
EVENTS_READONLY = PREFIX + "calendar.events.readonly"
CALENDAR_LIST = PREFIX + "calendar.calendarlist"
CALENDAR_LIST_READONLY = PREFIX + "calendar.calendarlist.readonly"
FREEBUSY = PREFIX + "calendar.freebusy"
EVENTS_FREEBUSY = PREFIX + "calendar.events.freebusy"


@dataclass(frozen=True, slots=True)
class ScopeNeed:
    """A capability a job needs: the narrowest scope granting it and broader ones that also do."""

    name: str
    narrowest: str
    broader: tuple[str, ...]

    @property
    def accepted(self) -> frozenset[str]:
        return frozenset((self.narrowest, *self.broader))

    def met_by(self, granted: Iterable[str]) -> bool:
        return not self.accepted.isdisjoint(granted)


READ_EVENTS = ScopeNeed("read events", EVENTS_READONLY, (EVENTS, CALENDAR_READONLY, CALENDAR))
WRITE_EVENTS = ScopeNeed("write events", EVENTS, (CALENDAR,))
READ_CALENDAR_LIST = ScopeNeed(
    "read the calendar list",
    CALENDAR_LIST_READONLY,
    (CALENDAR_LIST, CALENDAR_READONLY, CALENDAR),
)
READ_FREE_BUSY = ScopeNeed(
    "read free/busy", FREEBUSY, (EVENTS_FREEBUSY, CALENDAR_READONLY, CALENDAR)
)


def least_privilege(needs: Iterable[ScopeNeed]) -> tuple[str, ...]:
    """The fewest, narrowest scopes meeting every need, sorted.

    Starts from each need's narrowest scope, then drops a scope whenever the others still
    meet every need (a write scope that also reads makes the read scope redundant).
    """
    wanted = list(dict.fromkeys(needs))
    chosen = {need.narrowest for need in wanted}
    for scope in sorted(chosen):
        rest = chosen - {scope}
        if all(need.met_by(rest) for need in wanted):
            chosen = rest
    return tuple(sorted(chosen))


def unmet(needs: Iterable[ScopeNeed], granted: Iterable[str]) -> list[ScopeNeed]:
    """The needs ``granted`` does not meet."""
    have = frozenset(granted)
    return [need for need in needs if not need.met_by(have)]
