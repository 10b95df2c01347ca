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
of a member whose lease is held: all times are Redis's. A job gives back its own lease in the
transaction that writes its result (:meth:`SyncSchedule.stage_release`). A lease a lost job
never gives back lapses after ``LEASE_SECONDS``.

    schedule.add_user("user-42")                 # a new link: its calendar list is due now
    schedule.request_now("user-42", "primary")   # a push notification: sync soon
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gcal.keys import RedisKeys

log = logging.getLogger(__name__)

# How long a claimed sync may take, queue time and deferrals included, before its lease lapses.
LEASE_SECONDS = 3600
CALENDAR_LIST = ""  # the calendar id that stands for the user's calendar list

# KEYS: running, jobs. ARGV: member, the id of the job that ended.
_RELEASE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
    return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
return 1
"""
# KEYS: due, the user's synced calendars. ARGV: the user's calendar-list member. Returns the
# calendars that were synced.
_FORGET_USER = """
local calendars = redis.call('SMEMBERS', KEYS[2])
local members = {ARGV[1]}
for _, calendar in ipairs(calendars) do
    members[#members + 1] = ARGV[1] .. calendar
end
for first = 1, #members, 1000 do
    redis.call('ZREM', KEYS[1], unpack(members, first, math.min(first + 999, #members)))
end
redis.call('DEL', KEYS[2])
return calendars
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
        self._forget_user = redis.register_script(_FORGET_USER)

    async def add_user(self, user_id: str) -> None:
        """A newly linked user: read the calendar list now (its calendars follow)."""
        await self._redis.zadd(self._keys.sync_due, {member(user_id): 0})

    async def calendars(self, user_id: str) -> set[str]:
        """The ids of the user's calendars that are synced."""
        found: set[bytes] = await self._redis.smembers(  # type: ignore[misc]  # redis-py's union
            self._keys.sync_calendars(user_id)
        )
        return {c.decode() for c in found}

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
        found: list[bytes] = await self._forget_user(
            keys=self._forget_user_keys(user_id), args=[member(user_id)]
        )
        return {c.decode() for c in found}

    def stage_forget_user(self, pipe: Pipeline, user_id: str) -> None:
        """:meth:`forget_user`, queued on ``pipe`` (a transaction the caller runs)."""
        keys = self._forget_user_keys(user_id)
        # EVAL, not EVALSHA: inside MULTI a script Redis no longer holds could not be loaded.
        pipe.eval(_FORGET_USER, len(keys), *keys, member(user_id))

    def _forget_user_keys(self, user_id: str) -> list[str]:
        return [self._keys.sync_due, self._keys.sync_calendars(user_id)]

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

    def stage_release(self, pipe: Pipeline, user_id: str, calendar_id: str, job_id: str) -> None:
        """The job ``job_id`` ended: give back its lease (if it still holds it), in ``pipe``,
        the transaction that writes the job's result."""
        keys = self._lease_keys
        pipe.eval(_RELEASE, len(keys), *keys, member(user_id, calendar_id), job_id)

    @property
    def _lease_keys(self) -> list[str]:
        return [self._keys.sync_running, self._keys.sync_jobs]

    async def due_in(self, user_id: str, calendar_id: str) -> float | None:
        """Seconds until the calendar's next sync is due (negative: overdue), or None."""
        score = await self._redis.zscore(self._keys.sync_due, member(user_id, calendar_id))
        if score is None:
            return None
        seconds, micros = await self._redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return (float(score) - now_ms) / 1000
