"""The emulator's in-memory world: clients, accounts, grants, tokens, calendars, events, channels.

One :class:`Store` per emulator process. Handlers mutate it directly; nothing is persisted.
Time comes from :class:`Clock`, which the control API can move forward so tests can expire
codes, tokens and channels without sleeping.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from emulator.config import ClientConfig, EmulatorConfig


class Clock:
    """Wall-clock time plus an offset that tests can advance."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        """Seconds since the epoch, as the emulator sees it."""
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def new_token(prefix: str, nbytes: int = 32) -> str:
    """An opaque, URL-safe credential string shaped like Google's (``ya29.``, ``1//``, ``4/0``)."""
    return prefix + secrets.token_urlsafe(nbytes)


# --------------------------------------------------------------------------------------------
# OAuth


@dataclass(slots=True)
class Account:
    """A Google account. Its primary calendar's id is its email."""

    email: str
    sub: str
    name: str
    time_zone: str = "UTC"
    # Calendar "usage limits exceeded" switch: calls answer 403 quotaExceeded.
    quota_exceeded: bool = False
    calendars: dict[str, Calendar] = field(default_factory=dict)


@dataclass(slots=True)
class Grant:
    """What an account has consented to for one client; cleared by revocation."""

    client_id: str
    email: str
    scopes: set[str] = field(default_factory=set)


@dataclass(slots=True)
class AuthCode:
    code: str
    client_id: str
    email: str
    redirect_uri: str
    scopes: frozenset[str]
    issue_refresh_token: bool
    expires_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    nonce: str | None = None
    # Set by the first successful exchange; a second one is a replay.
    used: bool = False
    # The tokens the first exchange issued (revoked if the code is replayed).
    issued: tuple[str, ...] = ()


@dataclass(slots=True)
class RefreshToken:
    token: str
    client_id: str
    email: str
    scopes: frozenset[str]


@dataclass(slots=True)
class AccessToken:
    token: str
    client_id: str
    email: str
    scopes: frozenset[str]
    expires_at: float
    refresh_token: str | None = None


# --------------------------------------------------------------------------------------------
# Calendar


@dataclass(slots=True)
class Event:
    """One stored event (or recurring-event exception), kept in Google's JSON shape.

    ``resource`` is the representation Google would return (``id``, ``status``, ``start``...);
    ``seq`` is the calendar change sequence at the event's last change, which drives sync
    tokens. A deleted event stays as a ``status: "cancelled"`` tombstone.
    """

    resource: dict[str, Any]
    seq: int
    # Cached serialization of ``resource``; cleared by :meth:`Calendar.touch`.
    json_cache: bytes | None = None
    # Cached (start, end) epoch seconds parsed from ``resource`` (``emulator.eventbody.span``
    # fills it lazily, so events built by any path get it); cleared by :meth:`Calendar.touch`.
    span: tuple[float, float] | None = None

    @property
    def id(self) -> str:
        return str(self.resource["id"])

    @property
    def cancelled(self) -> bool:
        return self.resource.get("status") == "cancelled"


@dataclass(slots=True)
class Calendar:
    """A calendar owned by one account."""

    id: str
    owner: str
    summary: str
    time_zone: str = "UTC"
    description: str = ""
    primary: bool = False
    # Change sequence: every event change takes the next number.
    seq: int = 0
    # Sync tokens older than this sequence number answer 410 fullSyncRequired.
    sync_floor: int = 0
    # Events, by id. Filled lazily from ``pending`` (bulk seeding) on first access.
    _events: dict[str, Event] = field(default_factory=dict)
    pending: Callable[[Calendar], Iterator[dict[str, Any]]] | None = None
    # Derived views of the events (sorted indexes, parsed recurrence rules), owned by
    # ``emulator.eventquery``/``emulator.recurrence``; each entry records the ``seq`` it is for.
    views: dict[str, Any] = field(default_factory=dict)

    @property
    def events(self) -> dict[str, Event]:
        self.materialize()
        return self._events

    def materialize(self) -> None:
        """Store the pending bulk-seeded events, each taking the next sequence number."""
        if self.pending is not None:
            generate, self.pending = self.pending, None
            for resource in generate(self):
                self.seq += 1
                self._events[resource["id"]] = Event(resource, self.seq)

    def touch(self, event: Event) -> None:
        """Record a change to ``event``: next sequence, new ``etag``, cache dropped."""
        self.seq += 1
        event.seq = self.seq
        event.resource["etag"] = etag_for(event.resource["id"], self.seq)
        event.json_cache = None
        event.span = None

    def expire_sync_tokens(self) -> None:
        self.sync_floor = self.seq + 1


def etag_for(*parts: object) -> str:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).hexdigest()
    return f'"{int(digest, 16) % 10**16:016d}"'


@dataclass(slots=True)
class Delivery:
    """The outcome of one push notification to a channel's address."""

    message_number: int
    state: str  # "sync", "exists" or "not_exists"
    status: int | None = None  # the receiver's last HTTP status; None: no answer
    attempts: int = 0
    error: str | None = None  # why the last attempt failed without an answer


@dataclass(slots=True)
class Channel:
    """A push-notification channel created by events.watch."""

    id: str
    resource_id: str
    owner: str
    calendar_id: str
    address: str
    resource_uri: str
    expiration_ms: int
    token: str | None = None
    message_number: int = 0
    client_id: str = ""
    # Recent delivery outcomes (newest last, bounded) and running totals.
    deliveries: deque[Delivery] = field(default_factory=lambda: deque(maxlen=50))
    delivered: int = 0
    failed: int = 0


# --------------------------------------------------------------------------------------------


class Store:
    """All of the emulator's state, plus a count of requests per endpoint for assertions."""

    def __init__(self, config: EmulatorConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.clients: dict[str, ClientConfig] = {c.client_id: c for c in config.clients}
        self.accounts: dict[str, Account] = {}
        self.grants: dict[tuple[str, str], Grant] = {}
        self.codes: dict[str, AuthCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.channels: dict[str, Channel] = {}
        self.requests: Counter[str] = Counter()
        # Every ``sendUpdates`` a write carried: (method, event id, value), e.g.
        # ("events.insert", "abc123", "all"), for tests and the control API to read.
        self.sent_updates: list[tuple[str, str, str]] = []
        # Called after every event change (push notifications listen here).
        self.listeners: list[Callable[[Calendar, Event], None]] = []
        # Called after a channel is opened (push sends its "sync" message from here).
        self.channel_listeners: list[Callable[[Channel], None]] = []

    def reset(self) -> None:
        """Forget every account, token, event and channel; keep clients and listeners."""
        self.accounts.clear()
        self.grants.clear()
        self.codes.clear()
        self.refresh_tokens.clear()
        self.access_tokens.clear()
        self.channels.clear()
        self.requests.clear()
        self.sent_updates.clear()
        self.clock.offset = 0.0

    def change(self, calendar: Calendar, event: Event) -> None:
        """Record that ``event`` (new, changed or cancelled) changed in ``calendar``."""
        calendar.touch(event)
        for listener in self.listeners:
            listener(calendar, event)

    def open_channel(self, channel: Channel) -> None:
        """Register a new push channel and tell the channel listeners."""
        self.channels[channel.id] = channel
        for listener in self.channel_listeners:
            listener(channel)

    # Accounts and calendars ---------------------------------------------------------------

    def account(self, email: str, *, name: str | None = None, time_zone: str = "UTC") -> Account:
        """The account for ``email``, created (with its primary calendar) if new."""
        email = email.strip().lower()
        found = self.accounts.get(email)
        if found is not None:
            return found
        sub = str(int(hashlib.sha256(email.encode()).hexdigest(), 16) % 10**21).rjust(21, "1")
        account = Account(
            email=email, sub=sub, name=name or email.split("@")[0], time_zone=time_zone
        )
        account.calendars[email] = Calendar(
            id=email, owner=email, summary=email, time_zone=time_zone, primary=True
        )
        self.accounts[email] = account
        return account

    def calendar(self, account: Account, calendar_id: str) -> Calendar | None:
        """``account``'s calendar by id; ``primary`` names the primary calendar."""
        if calendar_id == "primary":
            calendar_id = account.email
        return account.calendars.get(calendar_id)

    # Grants and tokens ---------------------------------------------------------------------

    def issue_access_token(
        self, client_id: str, email: str, scopes: frozenset[str], refresh_token: str | None
    ) -> AccessToken:
        token = AccessToken(
            token=new_token("ya29.a0"),
            client_id=client_id,
            email=email,
            scopes=scopes,
            expires_at=self.clock.now() + self.config.access_token_ttl,
            refresh_token=refresh_token,
        )
        self.access_tokens[token.token] = token
        return token

    def valid_access_token(self, token: str) -> AccessToken | None:
        found = self.access_tokens.get(token)
        if found is None or found.expires_at <= self.clock.now():
            return None
        return found

    def revoke_grant(self, email: str, client_id: str | None = None) -> int:
        """Revoke ``email``'s grant (for one client, or all): its refresh and access tokens die.

        Returns how many grants were removed.
        """
        keys = [
            k for k in self.grants if k[1] == email and (client_id is None or k[0] == client_id)
        ]
        clients = {k[0] for k in keys}
        for key in keys:
            del self.grants[key]
        for rt in [
            t for t, v in self.refresh_tokens.items() if v.email == email and v.client_id in clients
        ]:
            del self.refresh_tokens[rt]
        for at in [
            t for t, v in self.access_tokens.items() if v.email == email and v.client_id in clients
        ]:
            del self.access_tokens[at]
        return len(keys)
