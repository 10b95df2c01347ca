"""The control API under ``/_emulator/``: how tests and benchmarks set up and inspect the emulator.

JSON in, JSON out; never fault-injected. Request bodies are pydantic models that refuse
unknown fields; bad input answers ``400 {"error": "<what is wrong>"}`` and an unknown account
``404``. Route names start with ``control.``.

* ``POST /_emulator/reset``: forget accounts, tokens, events and channels; clear faults and
  quota windows (``{"fault_seed": n}`` optional).
* ``POST /_emulator/accounts``: seed explicit accounts, calendars and Event bodies.
* ``POST /_emulator/seed``: seed N synthetic accounts (events materialize lazily), optionally
  minting tokens.
* ``GET /_emulator/state``, ``/requests``, ``/channels``, ``/sent-updates``,
  ``/accounts/{email}/calendars/{calendarId}/events?id=&iCalUID=``.
* ``GET|POST|DELETE /_emulator/faults``; ``POST /_emulator/token-endpoint/fail``.
* ``GET|PUT /_emulator/quotas``; ``POST /_emulator/accounts/{email}/quota-exceeded``.
* ``POST /_emulator/accounts/{email}/expire-sync-tokens`` and ``/revoke``.
* ``POST /_emulator/clock/advance``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emulator.config import QuotaConfig
from emulator.faults import FaultRule
from emulator.keys import FAULTS, QUOTAS, STORE
from emulator.seeding import (
    AccountSeed,
    CalendarSeed,
    SeedError,
    SyntheticEvents,
    SyntheticGrant,
    seed_accounts,
    seed_synthetic,
)
from emulator.state import Account, Channel, Store

PREFIX = "/_emulator"
Model = TypeVar("Model", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# Request bodies ----------------------------------------------------------------------------


class ResetBody(_Body):
    fault_seed: int | None = None


class CalendarBody(_Body):
    id: str | None = None
    summary: str
    time_zone: str | None = Field(default=None, alias="timeZone")
    description: str = ""
    events: list[dict[str, Any]] = []


class AccountBody(_Body):
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    name: str | None = None
    time_zone: str | None = Field(default=None, alias="timeZone")
    calendars: list[CalendarBody] = []
    events: list[dict[str, Any]] = []


class AccountsBody(_Body):
    accounts: list[AccountBody]


class GrantBody(_Body):
    client_id: str | None = None
    scopes: list[str] = Field(min_length=1)


class SeedBody(_Body):
    accounts: int = Field(ge=1, le=1_000_000)
    email_pattern: str = Field(default="user{n}@example.com", pattern=r"\{n\}.*@|@.*\{n\}")
    first: int = Field(default=0, ge=0)
    events_per_calendar: int = Field(default=250, ge=0, le=100_000)
    # Default: midnight UTC of the emulator's today.
    start: datetime | None = None
    spacing_minutes: float = Field(default=60, gt=0)
    duration_minutes: float = Field(default=30, ge=0)
    time_zone: str = "UTC"
    summary: str = "Event {i}"
    grant: GrantBody | None = None


class FaultsQuery(_Body):
    seed: int | None = None


class QuotaBody(_Body):
    per_user_per_minute: int = Field(default=0, ge=0)
    per_project_per_minute: int = Field(default=0, ge=0)
    exceeded_status: Literal[403, 429] = 403
    window_seconds: float = Field(default=60.0, gt=0)


class SwitchBody(_Body):
    enabled: bool


class RevokeBody(_Body):
    client_id: str | None = None


class TokenFailBody(_Body):
    status: Literal[500, 503]
    # How many token requests fail; absent: all of them until the faults are cleared.
    count: int | None = Field(default=None, ge=1)


class AdvanceBody(_Body):
    seconds: float = Field(ge=0)


# Plumbing ----------------------------------------------------------------------------------


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.json_response(obj, status=status)


def _fail(status: int, message: str) -> web.HTTPException:
    error = web.HTTPBadRequest if status == 400 else web.HTTPNotFound
    return error(text=json.dumps({"error": message}), content_type="application/json")


async def _read(request: web.Request, model: type[Model]) -> Model:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in err.errors()
        )
        raise _fail(400, f"invalid {model.__name__}: {problems}") from err


def _account(request: web.Request) -> Account:
    store = request.app[STORE]
    email = request.match_info["email"].strip().lower()
    account = store.accounts.get(email)
    if account is None:
        raise _fail(404, f"no account {email}")
    return account


# Handlers ----------------------------------------------------------------------------------


async def reset(request: web.Request) -> web.Response:
    body = await _read(request, ResetBody)
    app = request.app
    store = app[STORE]
    store.reset()
    app[FAULTS].clear(body.fault_seed)
    app[QUOTAS].reset(store.config.quotas)
    return _json({"reset": True})


async def seed_explicit(request: web.Request) -> web.Response:
    body = await _read(request, AccountsBody)
    seeds = [
        AccountSeed(
            email=a.email,
            name=a.name,
            time_zone=a.time_zone,
            events=a.events,
            calendars=[
                CalendarSeed(
                    id=c.id,
                    summary=c.summary,
                    time_zone=c.time_zone,
                    description=c.description,
                    events=c.events,
                )
                for c in a.calendars
            ],
        )
        for a in body.accounts
    ]
    try:
        summaries = seed_accounts(request.app[STORE], seeds)
    except SeedError as err:
        raise _fail(400, str(err)) from err
    return _json({"accounts": summaries})


async def seed(request: web.Request) -> web.Response:
    body = await _read(request, SeedBody)
    store = request.app[STORE]
    start = body.start
    if start is None:
        today = datetime.fromtimestamp(store.clock.now(), UTC)
        start = today.replace(hour=0, minute=0, second=0, microsecond=0)
    elif start.tzinfo is None:
        raise _fail(400, "start must carry a time zone offset (RFC 3339)")
    grant = None
    if body.grant is not None:
        client_id = body.grant.client_id or store.config.clients[0].client_id
        grant = SyntheticGrant(client_id, frozenset(body.grant.scopes))
    emails = [
        body.email_pattern.replace("{n}", str(n))
        for n in range(body.first, body.first + body.accounts)
    ]
    spec = SyntheticEvents(
        count=body.events_per_calendar,
        start=start,
        spacing=timedelta(minutes=body.spacing_minutes),
        duration=timedelta(minutes=body.duration_minutes),
        time_zone=body.time_zone,
        summary=body.summary,
    )
    try:
        tokens = seed_synthetic(store, emails=emails, spec=spec, grant=grant)
    except SeedError as err:
        raise _fail(400, str(err)) from err
    result: dict[str, Any] = {"accounts": len(emails), "first": emails[0], "last": emails[-1]}
    if grant is not None:
        result["tokens"] = tokens
    return _json(result)


async def calendar_events(request: web.Request) -> web.Response:
    """Stored events (tombstones included) of one calendar, filtered by ``id``/``iCalUID``."""
    account = _account(request)
    store = request.app[STORE]
    calendar = store.calendar(account, request.match_info["calendarId"])
    if calendar is None:
        raise _fail(404, f"no calendar {request.match_info['calendarId']} for {account.email}")
    wanted_id = request.query.get("id")
    wanted_uid = request.query.get("iCalUID")
    found = [
        event
        for event in calendar.events.values()
        if (wanted_id is None or event.id == wanted_id)
        and (wanted_uid is None or event.resource.get("iCalUID") == wanted_uid)
    ]
    cancelled = sum(1 for event in found if event.cancelled)
    return _json(
        {
            "count": len(found),
            "confirmed": len(found) - cancelled,
            "cancelled": cancelled,
            "events": [{**event.resource, "_seq": event.seq} for event in found],
        }
    )


async def state(request: web.Request) -> web.Response:
    app = request.app
    store = app[STORE]
    calendars = [c for a in store.accounts.values() for c in a.calendars.values()]
    # Calendars still pending are not materialized just to be counted.
    pending = sum(1 for c in calendars if c.pending is not None)
    events = sum(len(c.events) for c in calendars if c.pending is None)
    return _json(
        {
            "accounts": len(store.accounts),
            "calendars": len(calendars),
            "pending_calendars": pending,
            "events": events,
            "grants": len(store.grants),
            "refresh_tokens": len(store.refresh_tokens),
            "access_tokens": len(store.access_tokens),
            "channels": len(store.channels),
            "requests": sum(store.requests.values()),
            "faults_injected": app[FAULTS].injected,
            "quota_refused": app[QUOTAS].refused,
            "clock_offset": store.clock.offset,
        }
    )


async def requests(request: web.Request) -> web.Response:
    return _json(dict(request.app[STORE].requests))


async def sent_updates(request: web.Request) -> web.Response:
    """Every ``sendUpdates`` value a write carried, oldest first."""
    return _json(
        {
            "sent_updates": [
                {"method": method, "eventId": event_id, "sendUpdates": value}
                for method, event_id, value in request.app[STORE].sent_updates
            ]
        }
    )


def _channel(channel: Channel, store: Store) -> dict[str, Any]:
    return {
        "id": channel.id,
        "resourceId": channel.resource_id,
        "resourceUri": channel.resource_uri,
        "owner": channel.owner,
        "calendarId": channel.calendar_id,
        "address": channel.address,
        "token": channel.token,
        "expiration": str(channel.expiration_ms),
        "expired": channel.expiration_ms <= store.clock.now() * 1000,
        "messageNumber": channel.message_number,
        "delivered": channel.delivered,
        "failed": channel.failed,
        "deliveries": [
            {
                "messageNumber": d.message_number,
                "state": d.state,
                "status": d.status,
                "attempts": d.attempts,
                "error": d.error,
            }
            for d in channel.deliveries
        ],
    }


async def channels(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return _json({"channels": [_channel(c, store) for c in store.channels.values()]})


async def faults_list(request: web.Request) -> web.Response:
    faults = request.app[FAULTS]
    return _json(
        {"rules": [rule.model_dump() for rule in faults.rules()], "injected": faults.injected}
    )


async def faults_add(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        parsed = json.loads(raw or b"null")
        items = parsed if isinstance(parsed, list) else [parsed]
        rules = [FaultRule.model_validate(item) for item in items]
    except (ValueError, ValidationError) as err:
        raise _fail(400, f"invalid FaultRule (or list of them): {err}") from err
    for rule in rules:
        request.app[FAULTS].add(rule)
    return _json({"added": len(rules), "rules": len(request.app[FAULTS].rules())})


async def faults_clear(request: web.Request) -> web.Response:
    try:
        query = FaultsQuery.model_validate(dict(request.query))
    except ValidationError as err:
        raise _fail(400, f"invalid query: {err}") from err
    request.app[FAULTS].clear(query.seed)
    return _json({"rules": 0})


async def token_fail(request: web.Request) -> web.Response:
    body = await _read(request, TokenFailBody)
    rule = FaultRule(
        endpoint="oauth.token", error_rate=1.0, error_status=body.status, count=body.count
    )
    request.app[FAULTS].add(rule)
    return _json(rule.model_dump())


def _quotas(config: QuotaConfig) -> dict[str, Any]:
    return {
        "per_user_per_minute": config.per_user_per_minute,
        "per_project_per_minute": config.per_project_per_minute,
        "exceeded_status": config.exceeded_status,
        "window_seconds": config.window_seconds,
    }


async def quotas_get(request: web.Request) -> web.Response:
    quotas = request.app[QUOTAS]
    return _json({**_quotas(quotas.config), "refused": quotas.refused})


async def quotas_set(request: web.Request) -> web.Response:
    body = await _read(request, QuotaBody)
    config = QuotaConfig(**body.model_dump())
    request.app[QUOTAS].reset(config)
    return _json(_quotas(config))


async def quota_exceeded(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _read(request, SwitchBody)
    account.quota_exceeded = body.enabled
    return _json({"email": account.email, "quota_exceeded": account.quota_exceeded})


async def expire_sync_tokens(request: web.Request) -> web.Response:
    account = _account(request)
    for calendar in account.calendars.values():
        calendar.expire_sync_tokens()
    return _json({"email": account.email, "calendars": len(account.calendars)})


async def revoke(request: web.Request) -> web.Response:
    account = _account(request)
    body = await _read(request, RevokeBody)
    revoked = request.app[STORE].revoke_grant(account.email, body.client_id)
    return _json({"email": account.email, "revoked": revoked})


async def clock_advance(request: web.Request) -> web.Response:
    body = await _read(request, AdvanceBody)
    clock = request.app[STORE].clock
    clock.advance(body.seconds)
    return _json({"now": clock.now(), "offset": clock.offset})


_Handler = Callable[[web.Request], Awaitable[web.Response]]
_ROUTES: list[tuple[str, str, _Handler, str]] = [
    ("POST", "/reset", reset, "control.reset"),
    ("POST", "/accounts", seed_explicit, "control.accounts"),
    ("POST", "/seed", seed, "control.seed"),
    ("GET", "/state", state, "control.state"),
    ("GET", "/requests", requests, "control.requests"),
    ("GET", "/channels", channels, "control.channels"),
    ("GET", "/sent-updates", sent_updates, "control.sent_updates"),
    ("GET", "/faults", faults_list, "control.faults.list"),
    ("POST", "/faults", faults_add, "control.faults.add"),
    ("DELETE", "/faults", faults_clear, "control.faults.clear"),
    ("POST", "/token-endpoint/fail", token_fail, "control.token_endpoint.fail"),
    ("GET", "/quotas", quotas_get, "control.quotas.get"),
    ("PUT", "/quotas", quotas_set, "control.quotas.set"),
    ("POST", "/clock/advance", clock_advance, "control.clock.advance"),
    (
        "GET",
        "/accounts/{email}/calendars/{calendarId}/events",
        calendar_events,
        "control.events",
    ),
    ("POST", "/accounts/{email}/quota-exceeded", quota_exceeded, "control.quota_exceeded"),
    (
        "POST",
        "/accounts/{email}/expire-sync-tokens",
        expire_sync_tokens,
        "control.expire_sync_tokens",
    ),
    ("POST", "/accounts/{email}/revoke", revoke, "control.revoke"),
]


def setup(app: web.Application) -> None:
    """Register the control API on ``app``."""
    for method, path, handler, name in _ROUTES:
        app.router.add_route(method, PREFIX + path, handler, name=name)
