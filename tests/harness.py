"""The emulator as tests use it: a real HTTP server on 127.0.0.1 plus direct access to its state.

Two ways to run it: in the test's own event loop (for async clients), or in a thread with
its own loop (for the synchronous Google libraries, whose blocking calls would otherwise
stall a server on the same loop).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from emulator.app import create_app
from emulator.config import DEMO_CLIENT_ID, EmulatorConfig
from emulator.faults import Faults
from emulator.keys import FAULTS, QUOTAS, STORE
from emulator.quotas import Quotas
from emulator.state import Grant, RefreshToken, Store, new_token

CALENDAR_EVENTS = "https://www.googleapis.com/auth/calendar.events"
CALENDAR = "https://www.googleapis.com/auth/calendar"


@dataclass
class Emulator:
    """A running emulator: its base URL and its live state."""

    url: str
    app: web.Application

    @property
    def store(self) -> Store:
        return self.app[STORE]

    @property
    def faults(self) -> Faults:
        return self.app[FAULTS]

    @property
    def quotas(self) -> Quotas:
        return self.app[QUOTAS]

    def configure(self, **changes: object) -> None:
        """Change the running emulator's configuration (e.g. ``auto_approve=True``)."""
        self.store.config = dataclasses.replace(self.store.config, **changes)  # type: ignore[arg-type]

    @property
    def calendar_base(self) -> str:
        return f"{self.url}/calendar/v3/"

    def grant(
        self,
        email: str = "alice@example.com",
        scopes: Iterable[str] = (CALENDAR_EVENTS,),
        client_id: str = DEMO_CLIENT_ID,
    ) -> tuple[str, str]:
        """Consent on ``email``'s behalf without the browser flow: (access, refresh) tokens."""
        store = self.store
        account = store.account(email)
        scope_set = frozenset(scopes)
        grant = store.grants.setdefault((client_id, account.email), Grant(client_id, account.email))
        grant.scopes |= scope_set
        refresh = RefreshToken(new_token("1//0g"), client_id, account.email, scope_set)
        store.refresh_tokens[refresh.token] = refresh
        access = store.issue_access_token(client_id, account.email, scope_set, refresh.token)
        return access.token, refresh.token


class CalendarApi:
    """A bare Calendar v3 client for tests: one aiohttp session, one bearer token.

    ``call`` answers (status, parsed JSON), or the raw empty bytes for an empty body (204).
    """

    def __init__(self, http: aiohttp.ClientSession, emulator: Emulator, token: str) -> None:
        self.http = http
        self.base = emulator.calendar_base.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    async def raw(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        async with self.http.request(
            method,
            self.base + path,
            params=params,
            json=body,
            headers={**self.headers, **(headers or {})},
        ) as resp:
            return resp.status, await resp.read()

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        status, raw = await self.raw(method, path, **kwargs)
        return status, json.loads(raw) if raw else raw

    async def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        status, body = await self.call(method, path, **kwargs)
        assert status in (200, 204), body
        return body

    async def insert(
        self, body: dict[str, Any], calendar: str = "primary", **params: str
    ) -> dict[str, Any]:
        return dict(
            await self.ok("POST", f"/calendars/{calendar}/events", params=params, body=body)
        )

    async def page(self, **params: Any) -> dict[str, Any]:
        return dict(await self.ok("GET", "/calendars/primary/events", params=params))


async def start_in_loop(config: EmulatorConfig) -> tuple[Emulator, web.AppRunner]:
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    emulator = Emulator(url=f"http://127.0.0.1:{port}", app=app)
    emulator.store.config = _with_url(config, emulator.url)
    return emulator, runner


def _with_url(config: EmulatorConfig, url: str) -> EmulatorConfig:
    return dataclasses.replace(config, public_url=url)


class ThreadedEmulator:
    """The emulator served from a background thread's event loop."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> Emulator:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(start_in_loop(self._config), self._loop)
        emulator, self._runner = future.result(timeout=10)
        return emulator

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
