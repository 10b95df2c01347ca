"""What a user's account lifecycle does to their calendar syncs and push channels.

:class:`gcal.accounts.Accounts` calls these at each step (wired in :mod:`gcal.services`):

* linked: the user's calendar list is synced at once, and their calendars after it;
* leaving (a disconnect, before the grant is revoked at Google): their push channels are
  stopped at Google while it still honours the grant;
* gone (disconnected, or Google revoked the grant): nothing of theirs is scheduled any more,
  their channels and sync state are forgotten. A user who must link again is not synced
  until they do; linking again starts afresh.
"""

from __future__ import annotations

import logging

from gcal.push import PushChannels
from gcal.sync import CalendarSync
from gcal.sync_schedule import SyncSchedule

log = logging.getLogger(__name__)


class SyncLifecycle:
    """An account listener (:class:`gcal.accounts.AccountListener`) for syncs."""

    def __init__(self, schedule: SyncSchedule, push: PushChannels, sync: CalendarSync) -> None:
        self._schedule = schedule
        self._push = push
        self._sync = sync

    async def linked(self, user_id: str) -> None:
        await self._schedule.add_user(user_id)

    async def leaving(self, user_id: str) -> None:
        await self._push.stop_all(user_id, await self._schedule.calendars(user_id))

    async def gone(self, user_id: str) -> None:
        calendars = await self._schedule.forget_user(user_id)
        await self._push.forget_all(user_id, calendars)
        await self._sync.forget(user_id, calendars)
        log.info("syncs stopped user=%s calendars=%d", user_id, len(calendars))
