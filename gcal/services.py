"""The composition root: every service of the core, built once per process from settings.

    async with open_services(settings) as services:          # opens Redis and an HTTP pool
        await services.accounts.access_token("user-42")
        await services.calendar.list_events(...)

    services = Services.build(settings, redis, http)          # resources the caller owns

Both processes open it in their lifecycle hooks (auth_web's ``cleanup_ctx``, the worker's
``on_startup``/``on_shutdown``) and hand it to their handlers, with settings whose ``scopes``
their edge has filled in (``jobs.registry.resolved``: the core does not know the jobs). It
is a plain frozen dataclass rather than a lookup registry (such as ``svcs``): every process
needs every service, each is built once, and typed attributes let mypy check each use.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from redis.asyncio import Redis

from gcal.accounts import Accounts
from gcal.calendar_api import CalendarClient
from gcal.consent import ConsentStates
from gcal.crypto import Cipher, cipher_for
from gcal.keys import RedisKeys
from gcal.notifications import Notifier
from gcal.oauth import OAuthClient
from gcal.observer import NO_OBSERVER, GoogleObserver
from gcal.push import PushChannels
from gcal.ratelimit import RateLimiter
from gcal.settings import Settings
from gcal.sync import CalendarSync
from gcal.sync_lifecycle import SyncLifecycle
from gcal.sync_schedule import SyncSchedule
from gcal.tokens import TokenStore

# Connections to Google kept per process (aiohttp's pool), shared by every job.
HTTP_CONNECTIONS = 200


@dataclass(frozen=True, slots=True)
class Services:
    """What handlers and jobs are given."""

    settings: Settings
    redis: Redis
    http: aiohttp.ClientSession
    keys: RedisKeys
    cipher: Cipher
    notifier: Notifier
    oauth: OAuthClient
    tokens: TokenStore
    accounts: Accounts
    consents: ConsentStates
    limiter: RateLimiter
    calendar: CalendarClient
    sync: CalendarSync
    schedule: SyncSchedule
    push: PushChannels

    @classmethod
    def build(
        cls,
        settings: Settings,
        redis: Redis,
        http: aiohttp.ClientSession,
        observer: GoogleObserver = NO_OBSERVER,
    ) -> Services:
        if settings.scopes is None:
            raise ValueError(
                "settings.scopes is unset: resolve it at the process edge (jobs.registry.resolved)"
            )
        keys = RedisKeys(settings.redis_prefix)
        cipher = cipher_for(settings)
        notifier = Notifier(redis, keys)
        oauth = OAuthClient(settings, http, observer)
        tokens = TokenStore(redis, keys, cipher)
        accounts = Accounts(
            tokens,
            redis,
            keys,
            oauth,
            notifier,
            required_scopes=settings.scopes,
            refresh_margin=settings.refresh_margin,
        )
        limiter = RateLimiter.from_settings(redis, keys, settings)
        calendar = CalendarClient(settings, http, accounts, gate=limiter, observer=observer)
        sync = CalendarSync(redis, keys, calendar, notifier, settings)
        schedule = SyncSchedule(redis, keys)
        push = PushChannels(redis, keys, calendar, settings)
        accounts.listeners.append(SyncLifecycle(schedule, push, sync))
        return cls(
            settings=settings,
            redis=redis,
            http=http,
            keys=keys,
            cipher=cipher,
            notifier=notifier,
            oauth=oauth,
            tokens=tokens,
            accounts=accounts,
            consents=ConsentStates(redis, keys, cipher, ttl=settings.state_ttl),
            limiter=limiter,
            calendar=calendar,
            sync=sync,
            schedule=schedule,
            push=push,
        )


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, *, redis: Redis | None = None, observer: GoogleObserver = NO_OBSERVER
) -> AsyncIterator[Services]:
    """:class:`Services` with an HTTP pool (and a Redis client, unless ``redis`` is given)
    opened here and closed on exit; ``observer`` sees every request to Google."""
    client = redis if redis is not None else Redis.from_url(str(settings.redis_url))
    try:
        connector = aiohttp.TCPConnector(limit=HTTP_CONNECTIONS)
        async with aiohttp.ClientSession(connector=connector) as http:
            # aiohttp re-sends a GET/PUT/DELETE once, unasked, when its connection drops
            # (aio-libs/aiohttp#10790 has no public switch; its own test client turns it off
            # this way). Retries are the retry budget's alone (gcal.retry_budget): a hidden
            # third layer would double what a job may send Google.
            http._retry_connection = False
            yield Services.build(settings, client, http, observer)
    finally:
        if redis is None:
            await client.aclose()
