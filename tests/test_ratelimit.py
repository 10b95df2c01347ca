"""The rate limiter and quota breaker, against the test session's real Redis.

Also runnable as ``python -m tests.test_ratelimit CONFIG_JSON``: one racing process of the
cross-process test. It connects, prints ``ready``, waits for a line on stdin (so all racers
start together), tries ``attempts`` acquires at once and prints how many were admitted.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from gcal.errors import InvalidRequest, QuotaExhausted, RateLimited, Throttled
from gcal.keys import RedisKeys
from gcal.ratelimit import QuotaBreaker, RateLimiter
from gcal.settings import Settings


def limiter(redis: Redis, prefix: str, **config: Any) -> RateLimiter:
    """A limiter with a 2 s window that never waits, unless ``config`` says otherwise."""
    options: dict[str, Any] = {
        "per_user": 0,
        "per_project": 0,
        "window_seconds": 2.0,
        "max_wait": 0.0,
        **config,
    }
    return RateLimiter(redis, RedisKeys(prefix), **options)


async def admitted(gate: RateLimiter, user_id: str, attempts: int) -> int:
    """How many of ``attempts`` sequential acquires succeed (refusals must be RateLimited)."""
    refusals: list[RateLimited] = []
    for _ in range(attempts):
        try:
            await gate.acquire(user_id)
        except RateLimited as err:
            refusals.append(err)
    assert all(type(err) is Throttled for err in refusals)  # not QuotaExhausted
    return attempts - len(refusals)


# Windows ---------------------------------------------------------------------------------------


async def test_n_acquires_pass_then_the_next_is_rate_limited(
    redis: Redis, redis_prefix: str
) -> None:
    gate = limiter(redis, redis_prefix, per_user=5)
    for _ in range(5):
        await gate.acquire("u1")
    with pytest.raises(RateLimited) as info:
        await gate.acquire("u1")
    assert type(info.value) is Throttled
    assert info.value.retry_after is not None
    assert 0 < info.value.retry_after <= 2.0
    assert info.value.as_dict()["code"] == "rate_limited"


async def test_a_refused_request_is_not_counted(redis: Redis, redis_prefix: str) -> None:
    keys = RedisKeys(redis_prefix)
    gate = limiter(redis, redis_prefix, per_user=2, per_project=10)
    assert await admitted(gate, "u1", 5) == 2
    assert await redis.zcard(keys.rate_user("u1")) == 2
    assert await redis.zcard(keys.rate_project) == 2


async def test_window_keys_expire_with_the_window(redis: Redis, redis_prefix: str) -> None:
    keys = RedisKeys(redis_prefix)
    gate = limiter(redis, redis_prefix, per_user=3, per_project=3)
    await gate.acquire("u1")
    for key in (keys.rate_user("u1"), keys.rate_project):
        assert 0 < await redis.pttl(key) <= 2000


async def test_user_limits_are_independent(redis: Redis, redis_prefix: str) -> None:
    gate = limiter(redis, redis_prefix, per_user=3)
    assert await admitted(gate, "alice", 5) == 3
    assert await admitted(gate, "bob", 5) == 3


async def test_project_limit_caps_the_sum_over_users(redis: Redis, redis_prefix: str) -> None:
    keys = RedisKeys(redis_prefix)
    gate = limiter(redis, redis_prefix, per_user=3, per_project=5)
    assert await admitted(gate, "alice", 4) == 3
    assert await admitted(gate, "bob", 4) == 2
    assert await admitted(gate, "carol", 1) == 0
    # A request the project refused is not counted against the user either.
    assert await redis.exists(keys.rate_user("carol")) == 0


async def test_unlimited_dimensions_never_refuse(redis: Redis, redis_prefix: str) -> None:
    keys = RedisKeys(redis_prefix)
    gate = limiter(redis, redis_prefix)
    assert await admitted(gate, "u1", 200) == 200
    assert await redis.exists(keys.rate_user("u1"), keys.rate_project) == 0

    project_only = limiter(redis, redis_prefix, per_project=4)
    assert await admitted(project_only, "u1", 3) == 3
    assert await admitted(project_only, "u2", 3) == 1
    assert await redis.exists(keys.rate_user("u1")) == 0

    user_only = limiter(redis, redis_prefix, per_user=2)
    assert [await admitted(user_only, f"v{n}", 3) for n in range(10)] == [2] * 10


async def test_a_batch_costs_one_request_per_inner_call(redis: Redis, redis_prefix: str) -> None:
    keys = RedisKeys(redis_prefix)
    gate = limiter(redis, redis_prefix, per_user=5)
    await gate.acquire("u1", cost=3)
    with pytest.raises(RateLimited):
        await gate.acquire("u1", cost=3)
    await gate.acquire("u1", cost=2)
    assert await redis.zcard(keys.rate_user("u1")) == 5
    with pytest.raises(InvalidRequest):
        await gate.acquire("u2", cost=6)  # could never fit, so it must not be deferred forever
    with pytest.raises(InvalidRequest):
        await gate.acquire("u2", cost=0)


async def test_a_short_wait_is_waited_out(redis: Redis, redis_prefix: str) -> None:
    gate = limiter(redis, redis_prefix, per_user=2, window_seconds=0.3, max_wait=1.0)
    await gate.acquire("u1")
    await gate.acquire("u1")
    await gate.acquire("u1")  # window full: waits for the oldest stamp to leave, then passes


async def test_concurrent_short_waits_all_pass_in_turn(redis: Redis, redis_prefix: str) -> None:
    gate = limiter(redis, redis_prefix, per_project=1, window_seconds=0.2, max_wait=1.0)
    await asyncio.gather(*(gate.acquire(f"u{n}") for n in range(3)))


async def test_a_long_wait_is_refused_at_once(redis: Redis, redis_prefix: str) -> None:
    gate = limiter(redis, redis_prefix, per_user=1, window_seconds=30.0, max_wait=0.5)
    await gate.acquire("u1")
    with pytest.raises(RateLimited) as info:
        await gate.acquire("u1")
    assert info.value.retry_after is not None
    assert 0.5 < info.value.retry_after <= 30.0


async def test_limits_hold_across_processes_with_one_user(
    redis: Redis, redis_url: str, redis_prefix: str
) -> None:
    keys = RedisKeys(redis_prefix)
    assert await race(redis_url, redis_prefix, per_user=40, per_project=0, same_user=True) == 40
    assert await redis.zcard(keys.rate_user("shared")) == 40


async def test_limits_hold_across_processes_and_users(
    redis: Redis, redis_url: str, redis_prefix: str
) -> None:
    keys = RedisKeys(redis_prefix)
    assert await race(redis_url, redis_prefix, per_user=30, per_project=40, same_user=False) == 40
    assert await redis.zcard(keys.rate_project) == 40


async def race(
    redis_url: str, prefix: str, *, per_user: int, per_project: int, same_user: bool
) -> int:
    """Run 3 racing processes of 50 acquires each; the total they were admitted."""
    procs = []
    for n in range(3):
        config = {
            "redis_url": redis_url,
            "prefix": prefix,
            "user_id": "shared" if same_user else f"racer{n}",
            "per_user": per_user,
            "per_project": per_project,
            "attempts": 50,
        }
        procs.append(
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.test_ratelimit",
                json.dumps(config),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
        )
    try:
        for proc in procs:  # every racer is connected before any starts
            assert proc.stdout is not None
            assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"
        outputs = await asyncio.wait_for(
            asyncio.gather(*(proc.communicate(b"go\n") for proc in procs)), 30
        )
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert [proc.returncode for proc in procs] == [0, 0, 0]
    results = [json.loads(out) for out, _ in outputs]
    assert all(r["admitted"] + r["refused"] == 50 for r in results)
    return sum(int(r["admitted"]) for r in results)


async def _racer(config: dict[str, Any]) -> dict[str, int]:
    redis = Redis.from_url(config["redis_url"])
    gate = RateLimiter(
        redis,
        RedisKeys(config["prefix"]),
        per_user=config["per_user"],
        per_project=config["per_project"],
        window_seconds=60.0,
        max_wait=0.0,
    )
    await redis.ping()
    print("ready", flush=True)  # noqa: T201 - the parent reads it
    await asyncio.to_thread(sys.stdin.readline)
    outcomes = await asyncio.gather(
        *(gate.acquire(config["user_id"]) for _ in range(config["attempts"])),
        return_exceptions=True,
    )
    await redis.aclose()
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and type(outcome) is not Throttled:
            raise outcome
    admitted = sum(o is None for o in outcomes)
    return {"admitted": admitted, "refused": len(outcomes) - admitted}


# Quota breaker ---------------------------------------------------------------------------------


async def test_open_breaker_refuses_without_counting(redis: Redis, redis_prefix: str) -> None:
    keys = RedisKeys(redis_prefix)
    gate = limiter(redis, redis_prefix, per_user=5, per_project=5)
    assert await gate.breaker.remaining("u1") is None
    await gate.breaker.open("u1", 30)
    remaining = await gate.breaker.remaining("u1")
    assert remaining is not None
    assert 25 < remaining <= 30
    with pytest.raises(QuotaExhausted) as info:
        await gate.acquire("u1")
    assert info.value.retry_after is not None
    assert abs(info.value.retry_after - remaining) < 5
    assert info.value.as_dict()["code"] == "quota_exhausted"
    assert await redis.exists(keys.rate_user("u1"), keys.rate_project) == 0

    await gate.acquire("u2")  # other users are not affected

    await gate.breaker.close("u1")
    assert await gate.breaker.remaining("u1") is None
    await gate.acquire("u1")


async def test_breaker_open_never_shortens(redis: Redis, redis_prefix: str) -> None:
    breaker = QuotaBreaker(redis, RedisKeys(redis_prefix), default_seconds=600)
    await breaker.open("u1", 60)
    await breaker.open("u1", 5)
    assert (await breaker.remaining("u1") or 0) > 50
    await breaker.open("u1")
    assert (await breaker.remaining("u1") or 0) > 550


async def test_breaker_checked_even_when_unlimited(redis: Redis, redis_prefix: str) -> None:
    gate = limiter(redis, redis_prefix)
    await gate.open_breaker("u1", 10)  # the limiter's shortcuts to its breaker
    assert 0 < (await gate.breaker_remaining("u1") or 0) <= 10
    with pytest.raises(QuotaExhausted):
        await gate.acquire("u1")


async def test_breaker_key_without_ttl_counts_as_open(redis: Redis, redis_prefix: str) -> None:
    keys = RedisKeys(redis_prefix)
    gate = RateLimiter(
        redis,
        keys,
        per_user=1,
        per_project=0,
        window_seconds=1.0,
        breaker=QuotaBreaker(redis, keys, default_seconds=42),
    )
    await redis.set(keys.quota_breaker("u1"), "1")
    with pytest.raises(QuotaExhausted) as info:
        await gate.acquire("u1")
    assert info.value.retry_after == 42


# Configuration ---------------------------------------------------------------------------------


async def test_from_settings(redis: Redis, redis_prefix: str) -> None:
    settings = Settings(
        dev_mode=True,
        quota_user_per_window=2,
        quota_project_per_window=3,
        quota_window_seconds=5.0,
        quota_breaker_seconds=77.0,
        quota_headroom=0.1,
    )
    gate = RateLimiter.from_settings(redis, RedisKeys(redis_prefix), settings, max_wait=0)
    # The window is widened by the headroom for network-delay jitter.
    assert (gate.per_user, gate.per_project, gate.window_seconds) == (2, 3, 5.5)
    assert gate.breaker.default_seconds == 77.0
    assert await admitted(gate, "u1", 3) == 2
    assert await admitted(gate, "u2", 3) == 1


def test_default_settings_are_googles_quotas() -> None:
    settings = Settings(dev_mode=True)
    assert settings.quota_user_per_window == 600
    assert settings.quota_project_per_window == 10_000
    assert settings.quota_window_seconds == 60.0
    assert settings.quota_breaker_seconds == 900.0


@pytest.mark.parametrize(
    "field",
    [
        {"quota_user_per_window": -1},
        {"quota_project_per_window": -1},
        {"quota_window_seconds": 0},
        {"quota_breaker_seconds": 0},
    ],
)
def test_settings_refuse_bad_quotas(field: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Settings(dev_mode=True, **field)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "config",
    [
        {"per_user": -1},
        {"per_project": -1},
        {"window_seconds": 0},
        {"max_wait": -1},
        {"max_attempts": 0},
    ],
)
async def test_constructor_refuses_bad_limits(
    redis: Redis, redis_prefix: str, config: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the message is not the point
        limiter(redis, redis_prefix, **config)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_racer(json.loads(sys.argv[1])))))  # noqa: T201
