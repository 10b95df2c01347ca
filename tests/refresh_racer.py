"""A separate process that asks the token store for one user's access token many times at once.

Run by ``tests/test_tokens.py`` as several processes in parallel to prove that refreshes are
single-flight across processes. Reads its configuration as JSON from argv[1]; prints the
distinct access tokens it was given, as a JSON list.
"""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp
from pydantic import SecretStr
from redis.asyncio import Redis

from gcal.services import Services
from gcal.settings import Settings
from jobs.registry import resolved


async def race(config: dict[str, str | int]) -> set[str]:
    settings = resolved(
        Settings(
            client_id=str(config["client_id"]),
            client_secret=SecretStr(str(config["client_secret"])),
            token_endpoint=str(config["token_endpoint"]),  # type: ignore[arg-type]
            token_keys=(SecretStr(str(config["key"])),),
            api_keys=(SecretStr("unused-here"),),
            redis_prefix=str(config["prefix"]),
        )
    )
    redis = Redis.from_url(str(config["redis_url"]))
    async with aiohttp.ClientSession() as http:
        accounts = Services.build(settings, redis, http).accounts
        callers = int(config["callers"])
        tokens = await asyncio.gather(
            *(accounts.access_token(str(config["user_id"])) for _ in range(callers))
        )
    await redis.aclose()
    return set(tokens)


if __name__ == "__main__":
    print(json.dumps(sorted(asyncio.run(race(json.loads(sys.argv[1]))))))  # noqa: T201
