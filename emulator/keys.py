"""Typed keys for the emulator's aiohttp application state (the one door to ``app[...]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from emulator.api import Routes
    from emulator.faults import Faults
    from emulator.oauth import OAuthState
    from emulator.quotas import Quotas
    from emulator.state import Store

STORE: web.AppKey[Store] = web.AppKey("store")
QUOTAS: web.AppKey[Quotas] = web.AppKey("quotas")
FAULTS: web.AppKey[Faults] = web.AppKey("faults")
ROUTES: web.AppKey[Routes] = web.AppKey("routes")
OAUTH: web.AppKey[OAuthState] = web.AppKey("oauth")
