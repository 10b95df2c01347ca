"""The shared limiter keeps every worker under Google's quotas: with the emulator enforcing N
requests per window, 5N jobs all complete and the emulator refuses none.

The window is 1 s here instead of Google's 60 s (both sides are configurable), so the test
runs in seconds; the mechanism is the same.
"""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from emulator.config import QuotaConfig
from tests.harness import Emulator
from tests.pipeline import pipeline

N = 8
WINDOW = 1.0


@pytest.mark.parametrize(
    ("limit", "users"),
    [("user", ["u1"]), ("project", ["u1", "u2"])],
)
async def test_five_n_jobs_complete_without_a_quota_error(
    emulator: Emulator, redis: Redis, redis_prefix: str, limit: str, users: list[str]
) -> None:
    per_user = N if limit == "user" else 0
    per_project = N if limit == "project" else 0
    emulator.quotas.reset(
        QuotaConfig(
            per_user_per_minute=per_user, per_project_per_minute=per_project, window_seconds=WINDOW
        )
    )
    async with pipeline(
        emulator,
        redis,
        redis_prefix,
        quota_user_per_window=per_user,
        quota_project_per_window=per_project,
        quota_window_seconds=WINDOW,
        job_max_tries=100,
    ) as p:
        for i, user in enumerate(users):
            await p.link(user, f"user{i}@example.com")
        await p.start_worker()
        await p.start_worker()  # two workers share one limiter through Redis
        results = await asyncio.gather(
            *(
                p.run("list_calendars", {"user_id": users[i % len(users)]}, timeout=60)
                for i in range(5 * N)
            )
        )
    assert [r.error for r in results if not r.ok] == []
    assert emulator.quotas.refused == 0
    assert emulator.store.requests["calendarList.list"] == 5 * N
