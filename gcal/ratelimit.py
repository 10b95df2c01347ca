"""The request gate in front of Google: per-user and per-project sliding-window rate limits,
shared by every worker process through Redis, and the per-user quota breaker.

Google counts Calendar API requests per project (10,000/min) and per user per project
(600/min) over a sliding one-minute window (google-api-facts §4.5). :class:`RateLimiter`
keeps the service under both, whatever the number of workers::

    limiter = RateLimiter.from_settings(redis, keys, settings)
    await limiter.acquire("user-42")        # returns once the request may be sent
    # ... Google answers 403 quotaExceeded for user-42:
    await limiter.breaker.open("user-42")   # every acquire for user-42 now fails fast

``acquire`` returns when the request fits in both windows (recorded in both). When a window
is full it waits, if the wait is short (``max_wait``), because holding a job slot for a
fraction of a second is cheaper than deferring the job; otherwise it raises
:class:`Throttled` (a :class:`RateLimited`) with ``retry_after``, so the job layer defers the
job and frees the slot.
While the user's quota breaker is open it raises :class:`QuotaExhausted` without counting.

Each window is a sorted set of request stamps (Redis server time, microseconds). One Lua
script per attempt trims, checks and records both windows atomically, so concurrent
processes never overshoot and host clocks do not matter. The two keys live in different
hash slots: this needs a single Redis (not Redis Cluster), as the rest of the service does.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid

from redis.asyncio import Redis

from gcal.errors import InvalidRequest, QuotaExhausted, Throttled
from gcal.keys import RedisKeys
from gcal.settings import Settings

log = logging.getLogger(__name__)

# With quotas off, how long a breaker read as closed is believed (another worker may open it
# meanwhile: this worker then sends Google at most this long's requests more).
BREAKER_RECHECK_SECONDS = 1.0
_CLOSED_CACHE_SIZE = 50_000

_ADMITTED = 0
_WINDOW_FULL = 1
_BREAKER_OPEN = 2

# KEYS: breaker, user window, project window.
# ARGV: user limit, project limit (0 = unlimited), window (us), request id, cost.
# Returns {status, microseconds}: {0, 0} admitted; {1, wait} a window is full for ``wait``;
# {2, pttl_ms} the breaker is open (pttl -1: open without expiry).
_ACQUIRE = """
local pttl = redis.call('PTTL', KEYS[1])
if pttl ~= -2 then
    return {2, pttl}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[3])
local cost = tonumber(ARGV[5])
local wait = -1
for i = 1, 2 do
    local limit = tonumber(ARGV[i])
    if limit > 0 then
        local key = KEYS[i + 1]
        redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
        local count = redis.call('ZCARD', key)
        if count + cost > limit then
            -- Room for ``cost`` more once the oldest (count + cost - limit) stamps leave.
            local nth = count + cost - limit - 1
            local stamp = redis.call('ZRANGE', key, nth, nth, 'WITHSCORES')[2]
            wait = math.max(wait, tonumber(stamp) + window - now)
        end
    end
end
if wait >= 0 then
    return {1, math.max(wait, 1)}
end
local expire_ms = math.ceil(window / 1000)
for i = 1, 2 do
    if tonumber(ARGV[i]) > 0 then
        local key = KEYS[i + 1]
        for n = 1, cost do
            redis.call('ZADD', key, now, ARGV[4] .. ':' .. n)
        end
        redis.call('PEXPIRE', key, expire_ms)
    end
end
return {0, 0}
"""


class QuotaBreaker:
    """Per-user switch that stops all Calendar calls for a user for a while.

    Opened when Google reports the user's Calendar usage limits exhausted (403
    ``quotaExceeded``); it closes by itself when its time is up (a key with a TTL).
    """

    def __init__(self, redis: Redis, keys: RedisKeys, *, default_seconds: float = 900.0) -> None:
        if default_seconds <= 0:
            raise ValueError("default_seconds must be > 0")
        self._redis = redis
        self._keys = keys
        self.default_seconds = default_seconds

    async def open(self, user_id: str, seconds: float | None = None) -> None:
        """Stop calls for ``user_id`` for ``seconds`` (default: the configured time).

        Never shortens a breaker that is already open for longer.
        """
        seconds = self.default_seconds if seconds is None else seconds
        if seconds <= 0:
            raise ValueError("seconds must be > 0")
        key = self._keys.quota_breaker(user_id)
        ms = max(1, math.ceil(seconds * 1000))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(key, "1", px=ms, nx=True)
            pipe.pexpire(key, ms, gt=True)
            await pipe.execute()
        log.warning("quota breaker opened user=%s seconds=%s", user_id, seconds)

    async def close(self, user_id: str) -> None:
        """Allow calls for ``user_id`` again now."""
        await self._redis.delete(self._keys.quota_breaker(user_id))

    async def remaining(self, user_id: str) -> float | None:
        """Seconds until the breaker closes, or None when it is closed."""
        pttl = int(await self._redis.pttl(self._keys.quota_breaker(user_id)))
        if pttl == -2:
            return None
        return _breaker_seconds(pttl, self.default_seconds)


def _breaker_seconds(pttl_ms: int, default_seconds: float) -> float:
    # -1: someone set the key without a TTL; report the configured time rather than "forever".
    return pttl_ms / 1000 if pttl_ms >= 0 else default_seconds


class RateLimiter:
    """Per-user and per-project sliding-window limits shared through Redis (a ``RequestGate``).

    ``per_user`` / ``per_project`` requests are allowed in any ``window_seconds``; 0 means
    that dimension is unlimited. A full window is waited for when the wait is at most
    ``max_wait`` seconds in total over at most ``max_attempts`` tries.
    """

    def __init__(
        self,
        redis: Redis,
        keys: RedisKeys,
        *,
        per_user: int,
        per_project: int,
        window_seconds: float,
        max_wait: float = 1.0,
        max_attempts: int = 5,
        breaker: QuotaBreaker | None = None,
    ) -> None:
        if per_user < 0 or per_project < 0:
            raise ValueError("per_user and per_project must be >= 0 (0: unlimited)")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be > 0")
        if max_wait < 0 or max_attempts < 1:
            raise ValueError("max_wait must be >= 0 and max_attempts >= 1")
        self._keys = keys
        self._redis = redis
        self._script = redis.register_script(_ACQUIRE)
        # user id -> until when (monotonic) a breaker read closed counts as closed
        self._closed_until: dict[str, float] = {}
        self.per_user = per_user
        self.per_project = per_project
        self.window_seconds = window_seconds
        self.max_wait = max_wait
        self.max_attempts = max_attempts
        self.breaker = breaker or QuotaBreaker(redis, keys)
        self._window_us = max(1, round(window_seconds * 1_000_000))

    @classmethod
    def from_settings(
        cls, redis: Redis, keys: RedisKeys, settings: Settings, *, max_wait: float = 1.0
    ) -> RateLimiter:
        """The limiter for Google's quotas as configured (``quota_*`` settings).

        The window is widened by ``quota_headroom``: we count requests when we send them and
        Google when they arrive, so jitter in network delay could otherwise squeeze one
        request too many into Google's window.
        """
        return cls(
            redis,
            keys,
            per_user=settings.quota_user_per_window,
            per_project=settings.quota_project_per_window,
            window_seconds=settings.quota_window_seconds * (1 + settings.quota_headroom),
            max_wait=max_wait,
            breaker=QuotaBreaker(redis, keys, default_seconds=settings.quota_breaker_seconds),
        )

    async def acquire(self, user_id: str, *, cost: int = 1) -> None:
        """Return once ``cost`` requests for ``user_id`` may be sent (and count them).

        ``cost`` > 1 is for a batch, whose inner calls Google counts one by one. Raises
        :class:`QuotaExhausted` while the user's breaker is open, :class:`RateLimited` when
        a window stays full longer than ``max_wait``; neither counts the request.
        """
        self._check_cost(cost)
        if not (self.per_user or self.per_project):
            # No window to keep: only the breaker (no script, no stamps to record), and a
            # breaker seen closed is taken as closed for a second (one read per user then).
            if self._closed_until.get(user_id, 0.0) > time.monotonic():
                return
            pttl = int(await self._redis.pttl(self._keys.quota_breaker(user_id)))
            if pttl != -2:
                raise QuotaExhausted(
                    "Calendar usage limits are exhausted for this user; calls are paused",
                    retry_after=_breaker_seconds(pttl, self.breaker.default_seconds),
                )
            if len(self._closed_until) >= _CLOSED_CACHE_SIZE:
                self._closed_until.clear()
            self._closed_until[user_id] = time.monotonic() + BREAKER_RECHECK_SECONDS
            return
        keys = [
            self._keys.quota_breaker(user_id),
            self._keys.rate_user(user_id),
            self._keys.rate_project,
        ]
        args: list[str | int] = [
            self.per_user,
            self.per_project,
            self._window_us,
            uuid.uuid4().hex,
            cost,
        ]
        budget = self.max_wait
        for attempt in range(1, self.max_attempts + 1):
            status, amount = await self._script(keys=keys, args=args)
            if status == _ADMITTED:
                return
            if status == _BREAKER_OPEN:
                remaining = _breaker_seconds(int(amount), self.breaker.default_seconds)
                raise QuotaExhausted(
                    "Calendar usage limits are exhausted for this user; calls are paused",
                    retry_after=remaining,
                )
            wait = int(amount) / 1_000_000
            if wait > budget or attempt == self.max_attempts:
                log.debug("rate limited user=%s retry_after=%.3f", user_id, wait)
                raise Throttled("request rate limit reached; retry later", retry_after=wait)
            budget -= wait
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def open_breaker(self, user_id: str, seconds: float | None = None) -> None:
        """Open the user's quota breaker (see :meth:`QuotaBreaker.open`)."""
        self._closed_until.pop(user_id, None)
        await self.breaker.open(user_id, seconds)

    async def breaker_remaining(self, user_id: str) -> float | None:
        """Seconds until the user's quota breaker closes, or None when it is closed."""
        return await self.breaker.remaining(user_id)

    def _check_cost(self, cost: int) -> None:
        limits = [limit for limit in (self.per_user, self.per_project) if limit]
        if cost < 1 or any(cost > limit for limit in limits):
            raise InvalidRequest(f"a request costing {cost} can never fit the rate limits")
