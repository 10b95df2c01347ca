"""The benchmarks' linked users stay usable for as long as a run lasts: a full comparison
runs longer than an access token's hour (one failed at 59 minutes, every job answering
``internal``: the emulator did not know the benchmark's OAuth client, so no token could be
refreshed)."""

from __future__ import annotations

import aiohttp
from redis.asyncio import Redis

from bench.jobs_env import JobsEnv
from gcal.crypto import Cipher
from gcal.oauth import OAuthClient
from gcal.tokens import TokenStore
from tests.harness import Emulator


async def test_a_benchmark_users_tokens_refresh_as_in_production(
    emulator: Emulator, redis: Redis, redis_url: str
) -> None:
    env = JobsEnv(emulator.url, redis, redis_url, accounts=1)
    try:
        async with aiohttp.ClientSession(raise_for_status=True) as http:
            [user] = await env.link(http, label="t", first=0, events=0)
            stored = await TokenStore(redis, env.keys, Cipher(env.settings.token_keys)).get(user)
            assert stored is not None

            grant = await OAuthClient(env.settings, http).refresh(stored.refresh_token)

        assert grant.access_token.get_secret_value() not in {"", stored.access_token}
    finally:
        await env.cleanup()
