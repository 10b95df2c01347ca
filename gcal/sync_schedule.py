"""The sync schedule: when each linked user's calendars are synced next, and which syncs are
running, so that there is at most one sync per calendar at any moment.

Three Redis structures, each of fixed name (:mod:`gcal.keys`):

* ``<p>:sync:due``, a sorted set: ``<user>\\n<calendar>`` -> when its next sync is due (ms,
  Redis time). Calendar ``""`` stands for the user's calendar list (``sync_calendars``);
* ``<p>:sync:running``, a sorted set: the same members -> until when their current sync holds
  its lease (ms);
* ``<p>:sync:jobs``, a hash: member -> the id of the job holding the lease.

The workers claim due members atomically (a Lua script in :mod:`worker.scheduler` that also
enqueues the job), so several workers, with clocks that disagree, never start a second sync
of a member whose lease is held: all times are Redis's. A job ends by :meth:`release` of its
own lease. A lease a lost job never releases lapses after ``LEASE_SECONDS``.

    schedule.add_user("user-42")                 # a new link: its calendar list is due now
    schedule.request_now("user-42", "primary")   # a push notification: sync soon
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis.asyncio import Redis

from gcal.keys import RedisKeys

log = logging.getLogger(__name__)

# How long a claimed sync may take, queue time and deferrals included, before its lease lapses.
LEASE_SECONDS = 3600
CALENDAR_LIST = ""  # the calendar id that stands for the user's calendar list

# KEYS: running, jobs, due. ARGV: member, job id, next due in ms from now (0: leave as is).
_RELEASE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
    return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""


def member(user_id: str, calendar_id: str = CALENDAR_LIST) -> str:
    """The schedule's name for a user's calendar (user ids and calendar ids hold no newline)."""
    return f"{user_id}\n{calendar_id}"


def parse_member(value: str) -> tuple[str, str]:
    user_id, _, calendar_id = value.partition("\n")
    return user_id, calendar_id


class SyncSchedule:
    """Which syncs are due and which are running; see the module docstring."""

    def __init__(self, redis: Redis, keys: RedisKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._release = redis.register_script(_RELEASE)

    async def add_user(self, user_id: str) -> None:
        """A newly linked user: read the calendar list now (its calendars follow)."""
        await self._redis.zadd(self._keys.sync_due, {member(user_id): 0})

    async def calendars(self, user_id: str) -> set[str]:
        """The ids of the user's calendars that are synced."""
        found: set[bytes] = await self._redis.smembers(  # type: ignore[misc]  # redis-py's union
            self._keys.sync_calendars(user_id)
        )
        return {c.decode() for c in found}

    async def syncs(self, user_id: str, calendar_id: str) -> bool:
        """Whether the calendar is one of the user's synced calendars."""
        found = await self._redis.sismember(  # type: ignore[misc]  # redis-py's union
            self._keys.sync_calendars(user_id), calendar_id
        )
        return bool(found)

    async def add_calendars(self, user_id: str, calendar_ids: Iterable[str]) -> None:
        """Sync these calendars of the user from now on, the first time at once."""
        ids = list(calendar_ids)
        if not ids:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self._keys.sync_calendars(user_id), *ids)
            pipe.zadd(self._keys.sync_due, {member(user_id, c): 0 for c in ids}, nx=True)
            await pipe.execute()

    async def remove_calendars(self, user_id: str, calendar_ids: Iterable[str]) -> None:
        """Stop syncing these calendars of the user (their state is the caller's to forget)."""
        ids = list(calendar_ids)
        if not ids:
            return
        members = [member(user_id, c) for c in ids]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.srem(self._keys.sync_calendars(user_id), *ids)
            pipe.zrem(self._keys.sync_due, *members)
            await pipe.execute()

    async def forget_user(self, user_id: str) -> set[str]:
        """Stop syncing anything of the user; the calendars that were synced."""
        calendars = await self.calendars(user_id)
        members = [member(user_id), *(member(user_id, c) for c in calendars)]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._keys.sync_due, *members)
            pipe.delete(self._keys.sync_calendars(user_id))
            await pipe.execute()
        return calendars

    async def request_now(self, user_id: str, calendar_id: str) -> bool:
        """Make a synced calendar due now (a push notification); whether it is synced. A
        burst of requests makes one sync; one made while a sync runs makes one more after."""
        # ZADD XX LT: only a member already scheduled, and only ever earlier.
        changed = await self._redis.zadd(
            self._keys.sync_due, {member(user_id, calendar_id): 0}, xx=True, lt=True, ch=True
        )
        return (
            bool(changed)
            or await self._redis.zscore(self._keys.sync_due, member(user_id, calendar_id))
            is not None
        )

    async def release(self, user_id: str, calendar_id: str, job_id: str) -> bool:
        """The job ``job_id`` ended: give back its lease (if it still holds it)."""
        keys = [self._keys.sync_running, self._keys.sync_jobs, self._keys.sync_due]
        return bool(await self._release(keys=keys, args=[member(user_id, calendar_id), job_id]))

    async def due_in(self, user_id: str, calendar_id: str) -> float | None:
        """Seconds until the calendar's next sync is due (negative: overdue), or None."""
        score = await self._redis.zscore(self._keys.sync_due, member(user_id, calendar_id))
        if score is None:
            return None
        seconds, micros = await self._redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return (float(score) - now_ms) / 1000
