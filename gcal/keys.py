"""Every Redis name gcal-jobs uses: keys, channels, streams and their TTLs. No other module
spells a Redis string.

All names share one prefix (``Settings.redis_prefix``, default ``gcal``) so several
deployments, or parallel tests, can share one Redis::

    keys = RedisKeys("gcal")
    keys.tokens("user-42")      # "gcal:tokens:user-42"

User ids become part of keys and URLs, so they are validated here, before any key is built:
1 to 128 characters from ``A-Z a-z 0-9 . _ @ + -`` (no ``:``, the namespace separator).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from gcal.errors import InvalidRequest

USER_ID_RE = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
USER_ID_RULE = "1 to 128 characters from A-Z a-z 0-9 . _ @ + -"
JOB_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
JOB_ID_RULE = "1 to 128 characters from A-Z a-z 0-9 _ . -"

# Notifications kept in the durable stream (approximate cap, XADD MAXLEN ~).
NOTIFICATION_STREAM_MAXLEN = 100_000
# How long a job's result stays readable at its result key.
RESULT_TTL_SECONDS = 24 * 3600
# Queue members the workers could not answer for (approximate cap, XADD MAXLEN ~).
DEAD_LETTER_STREAM_MAXLEN = 10_000


def check_user_id(user_id: str) -> str:
    """``user_id`` if it is valid, else :class:`InvalidRequest` naming the rule."""
    if not USER_ID_RE.fullmatch(user_id):
        raise InvalidRequest(f"user_id must be {USER_ID_RULE}")
    return user_id


def check_job_id(job_id: str) -> str:
    """``job_id`` if it is valid, else :class:`InvalidRequest` naming the rule."""
    if not JOB_ID_RE.fullmatch(job_id):
        raise InvalidRequest(f"a job id must be {JOB_ID_RULE}")
    return job_id


@dataclass(frozen=True, slots=True)
class RedisKeys:
    """Builds every key, channel and stream name under one prefix."""

    prefix: str = "gcal"

    def tokens(self, user_id: str) -> str:
        """String: the user's encrypted token set."""
        return f"{self.prefix}:tokens:{check_user_id(user_id)}"

    def reconsent(self, user_id: str) -> str:
        """String (JSON): why the user must link their account again; absent when linked."""
        return f"{self.prefix}:reconsent:{check_user_id(user_id)}"

    def refresh_lock(self, user_id: str) -> str:
        """Lock: held by the one process refreshing the user's access token."""
        return f"{self.prefix}:lock:refresh:{check_user_id(user_id)}"

    def oauth_state(self, state_digest: str) -> str:
        """Hash, TTL ``Settings.state_ttl``: a pending consent. Field ``consent`` (encrypted):
        the user, PKCE verifier, return_to and login hint; field ``browser``, once a browser
        opened the consent: the SHA-256 of that browser's binding secret.

        Keyed by the SHA-256 of the state, so Redis never holds a usable state value.
        """
        return f"{self.prefix}:oauth:state:{state_digest}"

    def tokens_pattern(self) -> str:
        """SCAN pattern matching every user's token key (for key rotation)."""
        return f"{self.prefix}:tokens:*"

    # Jobs ------------------------------------------------------------------------------------

    @property
    def queue(self) -> str:
        """arq's queue (sorted set of job ids); arq keeps its own ``arq:job:*`` keys."""
        return f"{self.prefix}:queue"

    @property
    def queue_wake(self) -> str:
        """Pub/sub channel: published after an enqueue, so idle workers read the queue at
        once instead of at their next poll (optional for producers; :mod:`worker.wake`)."""
        return f"{self.prefix}:queue:wake"

    def worker_health(self, host: str, pid: int) -> str:
        """String, PX ~6 s: one live worker process's health record (arq's health-check key,
        one per worker, so a probe can tell which worker on which host is alive)."""
        return f"{self.prefix}:workers:{host}:{pid}"

    def worker_health_pattern(self, host: str) -> str:
        """SCAN pattern matching the health records of the workers on ``host``."""
        return f"{self.prefix}:workers:{host}:*"

    @property
    def dead_letters(self) -> str:
        """Stream (capped): queue members no result could be written for (a job id that is
        not UTF-8), with the reason; for operators."""
        return f"{self.prefix}:dead-letters"

    def result(self, job_id: str) -> str:
        """String (JSON), TTL ``RESULT_TTL_SECONDS``: the job's result, written before any
        notification of it."""
        return f"{self.prefix}:result:{job_id}"

    def retries_spent(self, job_id: str) -> str:
        """String (an integer), TTL 1 day: how much of its retry budget a deferred job has
        spent (:mod:`gcal.retry_budget`); absent for a job that never failed."""
        return f"{self.prefix}:retries:{job_id}"

    def result_channel(self, job_id: str) -> str:
        """Pub/sub channel: the job's result, once, for a producer awaiting that job."""
        return f"{self.prefix}:result:{job_id}:done"

    # Rate limits ------------------------------------------------------------------------------

    def rate_user(self, user_id: str) -> str:
        """Sorted set: the user's recent Google requests (sliding window)."""
        return f"{self.prefix}:rate:user:{check_user_id(user_id)}"

    @property
    def rate_project(self) -> str:
        """Sorted set: the project's recent Google requests (sliding window)."""
        return f"{self.prefix}:rate:project"

    def quota_breaker(self, user_id: str) -> str:
        """String, TTL = breaker time: set while the user's Calendar usage limits are exhausted."""
        return f"{self.prefix}:breaker:quota:{check_user_id(user_id)}"

    # Calendar sync --------------------------------------------------------------------------

    def sync_state(self, user_id: str, calendar_id: str) -> str:
        """String (JSON): one calendar's sync cursor and progress (:mod:`gcal.sync`)."""
        return f"{self._calendar(user_id, calendar_id)}:state"

    def sync_seen(self, user_id: str, calendar_id: str) -> str:
        """Hash: event id -> what subscribers were last told of it (etag, start, end)."""
        return f"{self._calendar(user_id, calendar_id)}:seen"

    def sync_listed(self, user_id: str, calendar_id: str) -> str:
        """Set: the event ids a full listing in progress has met (for deletions in a gap)."""
        return f"{self._calendar(user_id, calendar_id)}:listed"

    def sync_calendars(self, user_id: str) -> str:
        """Set: the ids of the user's calendars that are synced."""
        return f"{self.prefix}:sync:{check_user_id(user_id)}:calendars"

    @property
    def sync_due(self) -> str:
        """Sorted set: ``<user>\n<calendar>`` -> when its next sync is due (ms, Redis time);
        calendar "" is the user's calendar-list sync (:mod:`gcal.sync_schedule`)."""
        return f"{self.prefix}:sync:due"

    @property
    def sync_running(self) -> str:
        """Sorted set: the same members -> until when their running sync holds its lease (ms)."""
        return f"{self.prefix}:sync:running"

    @property
    def sync_jobs(self) -> str:
        """Hash: member -> the id of the sync job holding its lease."""
        return f"{self.prefix}:sync:jobs"

    @property
    def sync_job_counter(self) -> str:
        """String (an integer): numbers the sync jobs the scheduler enqueues."""
        return f"{self.prefix}:sync:job-counter"

    @property
    def sync_job_id_prefix(self) -> str:
        """The ids of the sync jobs the scheduler enqueues: this, then the counter's number
        (``<p>-sync-<n>``). arq's job keys are not prefixed, so the id carries the prefix:
        deployments sharing one Redis never take each other's job ids."""
        return f"{self.prefix}-sync-"

    def _calendar(self, user_id: str, calendar_id: str) -> str:
        # Calendar ids are printable without "/" or whitespace; quoted, they hold no ":".
        return f"{self.prefix}:sync:{check_user_id(user_id)}:{quote(calendar_id, safe='@._-+')}"

    # Push channels ----------------------------------------------------------------------------

    def push_watch(self, user_id: str, calendar_id: str) -> str:
        """String (JSON): the push channel watching the calendar (id, resource id, expiry)."""
        return f"{self._calendar(user_id, calendar_id)}:channel"

    def push_channel(self, channel_id: str) -> str:
        """Hash: a push channel Google may post to: whose calendar, the hash of its token,
        its resource id, expiry, the last message number accepted."""
        return f"{self.prefix}:push:channel:{channel_id}"

    # Notifications ----------------------------------------------------------------------------

    @property
    def notifications(self) -> str:
        """Pub/sub channel: every notification, as JSON, for live listeners."""
        return f"{self.prefix}:notifications"

    @property
    def notification_stream(self) -> str:
        """Stream (capped): the same notifications, for consumers that were away."""
        return f"{self.prefix}:notifications:stream"
