"""What job functions are given: the dependencies (built once per worker) and the job's identity."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
from redis.asyncio import Redis

from gcal.calendar_api import CalendarClient
from gcal.keys import RedisKeys
from gcal.ratelimit import RateLimiter
from gcal.settings import Settings
from gcal.tokens import TokenStore


@dataclass(frozen=True, slots=True)
class JobDeps:
    settings: Settings
    redis: Redis
    keys: RedisKeys
    http: aiohttp.ClientSession
    tokens: TokenStore
    calendar: CalendarClient
    limiter: RateLimiter


@dataclass(frozen=True, slots=True)
class JobInfo:
    """The running job: its id (the default idempotency key) and which try this is."""

    job_id: str
    attempt: int
