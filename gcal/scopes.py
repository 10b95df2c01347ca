"""Google's OAuth scopes as this service knows them, and the capabilities (:class:`ScopeNeed`)
jobs declare: the one place a scope's name is spelled.

A job declares what it needs ("read events"), not a scope: each need names the narrowest
scope that grants it and the broader ones that also do (google-api-facts §1.7, from the
discovery document's per-method ``scopes``). The scopes a deployment asks users for are then
derived, least privilege first, from the needs of the jobs it runs::

    least_privilege([READ_EVENTS, WRITE_EVENTS, READ_CALENDAR_LIST])
    # ("https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    #  "https://www.googleapis.com/auth/calendar.events")

``calendar.events`` covers reading events too, so ``calendar.events.readonly`` is dropped.

While a job runs, its needs are the *running needs* (:func:`needs_applied`, set by the worker
around the job's code, like the retry budget): the token source checks them against the
scopes the user granted before a request leaves for Google (:func:`lacking`), so a grant that
cannot serve the job answers ``scope_missing`` naming the scope to ask for, without spending a
request. Outside a job (auth_web, a disconnect's clean-up) nothing is checked.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gcal.errors import ScopeMissing

PREFIX = "https://www.googleapis.com/auth/"
CALENDAR = PREFIX + "calendar"
CALENDAR_READONLY = PREFIX + "calendar.readonly"
EVENTS = PREFIX + "calendar.events"
EVENTS_READONLY = PREFIX + "calendar.events.readonly"
CALENDAR_LIST = PREFIX + "calendar.calendarlist"
CALENDAR_LIST_READONLY = PREFIX + "calendar.calendarlist.readonly"
FREEBUSY = PREFIX + "calendar.freebusy"
EVENTS_FREEBUSY = PREFIX + "calendar.events.freebusy"

# Every Calendar scope of the discovery document (google-api-facts §1.7).
CALENDAR_SCOPES = frozenset(
    {
        CALENDAR,
        CALENDAR_READONLY,
        EVENTS,
        EVENTS_READONLY,
        PREFIX + "calendar.events.owned",
        PREFIX + "calendar.events.owned.readonly",
        PREFIX + "calendar.events.public.readonly",
        EVENTS_FREEBUSY,
        FREEBUSY,
        PREFIX + "calendar.app.created",
        CALENDAR_LIST,
        CALENDAR_LIST_READONLY,
        PREFIX + "calendar.calendars",
        PREFIX + "calendar.calendars.readonly",
        PREFIX + "calendar.acls",
        PREFIX + "calendar.acls.readonly",
        PREFIX + "calendar.settings",
        PREFIX + "calendar.settings.readonly",
    }
)

# Sign-in scopes: who the user is, no calendar data. ``openid`` is asked for in every consent
# (gcal.oauth); Google reports the short names ``email`` and ``profile`` granted as the
# userinfo URLs (google-api-facts §1.2).
OPENID = "openid"
USERINFO_EMAIL = PREFIX + "userinfo.email"
USERINFO_PROFILE = PREFIX + "userinfo.profile"
_ALIASES = {"email": USERINFO_EMAIL, "profile": USERINFO_PROFILE}
IDENTITY_SCOPES = frozenset({OPENID, *_ALIASES, *_ALIASES.values()})

# What a deployment may ask users for, as Google spells it.
KNOWN_SCOPES = CALENDAR_SCOPES | IDENTITY_SCOPES


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


def normalize(scopes: Iterable[str]) -> frozenset[str]:
    """Scopes as Google reports them granted (``email`` -> ``.../userinfo.email``)."""
    return frozenset(_ALIASES.get(scope, scope) for scope in scopes)


def missing(required: Iterable[str], granted: Iterable[str]) -> list[str]:
    """The required scopes ``granted`` lacks, sorted."""
    return sorted(normalize(required) - normalize(granted))


def unknown(scopes: Iterable[str]) -> list[str]:
    """The scopes that are not Google Calendar or sign-in scopes, in order."""
    return [scope for scope in scopes if scope not in KNOWN_SCOPES]


def lacking(needs: Iterable[ScopeNeed], detail: str) -> ScopeMissing:
    """The error for ``needs`` a grant does not serve: it names each need's narrowest scope
    (what to ask the user for), in its message and in ``missing_scopes``."""
    wanted = list(dict.fromkeys(needs))
    scopes = tuple(sorted({need.narrowest for need in wanted}))
    what = ", ".join(need.name for need in wanted)
    return ScopeMissing(
        f"{detail}: the user's grant lacks {' '.join(scopes)} ({what}); "
        "have them link again with this scope",
        missing_scopes=scopes,
    )


# The needs of the job running in this task (empty: not in a job, nothing to check).
_RUNNING: contextvars.ContextVar[tuple[ScopeNeed, ...]] = contextvars.ContextVar(
    "gcal_running_needs", default=()
)


@contextlib.contextmanager
def needs_applied(needs: Iterable[ScopeNeed]) -> Iterator[None]:
    """Make ``needs`` the running needs of the calls made inside the ``with`` (this task)."""
    token = _RUNNING.set(tuple(needs))
    try:
        yield
    finally:
        _RUNNING.reset(token)


def running_needs() -> tuple[ScopeNeed, ...]:
    """The needs of the job running in this task; empty outside a job."""
    return _RUNNING.get()
