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

from gcal.errors import InvalidRequest

USER_ID_RE = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
USER_ID_RULE = "1 to 128 characters from A-Z a-z 0-9 . _ @ + -"

# Notifications kept in the durable stream (approximate cap, XADD MAXLEN ~).
NOTIFICATION_STREAM_MAXLEN = 100_000
# How long a job's result stays readable at its result key.
RESULT_TTL_SECONDS = 24 * 3600


def check_user_id(user_id: str) -> str:
    """``user_id`` if it is valid, else :class:`InvalidRequest` naming the rule."""
    if not USER_ID_RE.fullmatch(user_id):
        raise InvalidRequest(f"user_id must be {USER_ID_RULE}")
    return user_id


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
    def health_check(self) -> str:
        """arq's health-check key, refreshed by live workers."""
        return f"{self.prefix}:queue:health-check"

    def result(self, job_id: str) -> str:
        """String (JSON), TTL ``RESULT_TTL_SECONDS``: the job's result, written before any
        notification of it."""
        return f"{self.prefix}:result:{job_id}"

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

    # Notifications ----------------------------------------------------------------------------

    @property
    def notifications(self) -> str:
        """Pub/sub channel: every notification, as JSON, for live listeners."""
        return f"{self.prefix}:notifications"

    @property
    def notification_stream(self) -> str:
        """Stream (capped): the same notifications, for consumers that were away."""
        return f"{self.prefix}:notifications:stream"
