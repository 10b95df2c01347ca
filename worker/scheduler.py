"""The sync scheduler every worker runs beside its jobs: each tick, claim the syncs that are due
(:mod:`gcal.sync_schedule`) and enqueue them, in one Lua script.

One script call claims up to ``BATCH`` due members and, for each one whose lease is free,
takes the lease, moves its due time one interval on (spread by a jitter) and enqueues its
job (``sync_calendar``, or ``sync_calendars`` for a calendar list) as arq's JSON payload,
exactly as a producer would. Being one script, it is atomic: any number of workers may tick
at once, with clocks that disagree (only Redis's clock is read), and no member gets a second
job while its lease is held. A member due while its sync runs (a push notification came in)
is looked at again a second later, and synced once more after the running one ends.

Each tick costs O(due members), never O(all users): it reads only the head of the due set.
We do not rely on arq's cron (``unique`` is known to run a job twice across workers).
"""

from __future__ import annotations

import asyncio
import logging
import random

from arq.constants import job_key_prefix
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gcal.keys import RedisKeys
from gcal.settings import Settings
from gcal.sync_schedule import LEASE_SECONDS
from gcal.tasks import cancel

log = logging.getLogger(__name__)

BATCH = 500
# How long a payload waits on the queue before arq drops it (as a producer's would).
PAYLOAD_TTL_MS = 24 * 3600 * 1000
# A due member whose sync still runs is looked at again this much later.
BUSY_RETRY_MS = 1000

# KEYS: due, running, jobs, counter, queue, the queue's wake channel.
# ARGV: batch, lease ms, calendar interval ms, list interval ms, jitter fraction,
#       arq job key prefix, payload ttl ms, busy retry ms, job id prefix.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, every, every_list = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local jitter = tonumber(ARGV[5])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local started = 0
for _, m in ipairs(due) do
    local held = redis.call('ZSCORE', KEYS[2], m)
    if held and tonumber(held) > now then
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[8]), m)
    else
        local cut = string.find(m, '\\n', 1, true)
        local user, calendar = string.sub(m, 1, cut - 1), string.sub(m, cut + 1)
        local job_id = ARGV[9] .. redis.call('INCR', KEYS[4])
        local interval, name = every, 'sync_calendar'
        local args = '{"user_id":' .. cjson.encode(user)
        if calendar == '' then
            interval, name = every_list, 'sync_calendars'
        else
            args = args .. ',"calendar_id":' .. cjson.encode(calendar)
        end
        -- Spread the next syncs: a fraction in [-jitter, +jitter) drawn from a hash.
        local draw = tonumber(string.sub(redis.sha1hex(m .. now), 1, 8), 16) / 4294967296
        local next_due = now + math.floor(interval * (1 + jitter * (draw * 2 - 1)))
        redis.call('ZADD', KEYS[1], next_due, m)
        redis.call('ZADD', KEYS[2], now + lease, m)
        redis.call('HSET', KEYS[3], m, job_id)
        local payload = '{"t":null,"f":"' .. name .. '","a":[],"k":' .. args .. '}'
            .. ',"et":' .. string.format('%d', now) .. '}'
        redis.call('SET', ARGV[6] .. job_id, payload, 'PX', tonumber(ARGV[7]))
        redis.call('ZADD', KEYS[5], now, job_id)
        started = started + 1
    end
end
if started > 0 then
    redis.call('PUBLISH', KEYS[6], '')
end
return started
"""


class Scheduler:
    """Ticks while the worker runs: :meth:`start` in ``on_startup``, :meth:`stop` on shutdown."""

    def __init__(self, redis: Redis, keys: RedisKeys, settings: Settings) -> None:
        self._redis = redis
        self._keys = keys
        self._settings = settings
        self._claim = redis.register_script(_CLAIM)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sync-scheduler")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def tick(self) -> int:
        """Claim and enqueue what is due now; how many syncs were started."""
        s = self._settings
        every = s.sync_push_interval_seconds if s.push_webhook_url else s.sync_interval_seconds
        keys = self._keys
        started = await self._claim(
            keys=[
                keys.sync_due,
                keys.sync_running,
                keys.sync_jobs,
                keys.sync_job_counter,
                keys.queue,
                keys.queue_wake,
            ],
            args=[
                BATCH,
                LEASE_SECONDS * 1000,
                int(every * 1000),
                int(s.sync_calendar_list_interval_seconds * 1000),
                s.sync_jitter,
                job_key_prefix,
                PAYLOAD_TTL_MS,
                BUSY_RETRY_MS,
                keys.sync_job_id_prefix,
            ],
        )
        return int(started)

    async def _run(self) -> None:
        tick = self._settings.sync_tick_seconds
        while True:
            try:
                started = await self.tick()
            except RedisError as err:
                log.warning("sync scheduler: Redis failed (%s); trying again", type(err).__name__)
                started = 0
            if started:
                log.debug("sync scheduler: %d syncs started", started)
            # A full batch: more may be due, go on at once; else wait (spread across workers).
            if started < BATCH:
                await asyncio.sleep(tick * (0.75 + random.random() / 2))  # noqa: S311 - spread
