"""Sliding-window request limits per user and per project, answered as Google answers them.

Google's Calendar quotas are per minute per project and per minute per user per project,
over a sliding window (google-api-facts §4.5). Off (0) by default; set through
:class:`emulator.config.QuotaConfig` or the control API.
"""

from __future__ import annotations

from collections import deque

from emulator.config import QuotaConfig
from emulator.errors import ApiError
from emulator.state import Clock


class Quotas:
    """Counts requests in a sliding window and refuses those over the limit."""

    def __init__(self, config: QuotaConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self._users: dict[tuple[str, str], deque[float]] = {}
        self._projects: dict[str, deque[float]] = {}
        self.refused = 0

    def reset(self, config: QuotaConfig | None = None) -> None:
        self.config = config or self.config
        self._users.clear()
        self._projects.clear()
        self.refused = 0

    def check(self, email: str, project: str) -> None:
        """Count one request by ``email`` through ``project`` (the OAuth client), or refuse it.

        A refused request does not count against the window, as with Google.
        """
        cfg = self.config
        if not cfg.per_user_per_minute and not cfg.per_project_per_minute:
            return
        now = self.clock.now()
        horizon = now - cfg.window_seconds
        user = self._users.setdefault((project, email), deque())
        proj = self._projects.setdefault(project, deque())
        for window in (user, proj):
            while window and window[0] <= horizon:
                window.popleft()
        if cfg.per_project_per_minute and len(proj) >= cfg.per_project_per_minute:
            self.refused += 1
            raise self._exceeded("rateLimitExceeded", "Rate Limit Exceeded")
        if cfg.per_user_per_minute and len(user) >= cfg.per_user_per_minute:
            self.refused += 1
            raise self._exceeded("userRateLimitExceeded", "User Rate Limit Exceeded")
        user.append(now)
        proj.append(now)

    def _exceeded(self, reason: str, message: str) -> ApiError:
        if self.config.exceeded_status == 429:
            return ApiError(429, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits")
        return ApiError(403, reason, message, domain="usageLimits")
