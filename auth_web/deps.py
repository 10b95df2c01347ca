"""The auth_web app's dependencies: one frozen bundle, one typed door (``deps(request)``)."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from auth_web.metrics import Metrics
from gcal.crypto import Cipher
from gcal.keys import RedisKeys
from gcal.notifications import Notifier
from gcal.oauth import OAuthClient
from gcal.settings import Settings
from gcal.tokens import TokenStore


@dataclass(frozen=True, slots=True)
class Deps:
    settings: Settings
    redis: Redis
    http: aiohttp.ClientSession
    keys: RedisKeys
    cipher: Cipher
    oauth: OAuthClient
    tokens: TokenStore
    notifier: Notifier
    metrics: Metrics


DEPS: web.AppKey[Deps] = web.AppKey("deps", Deps)


def deps(request: web.Request) -> Deps:
    return request.app[DEPS]
