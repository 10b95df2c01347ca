"""``python -m gcal``: operator commands for the token store and the settings.

    python -m gcal new-key            print a new encryption key for GCAL_TOKEN_KEYS
    python -m gcal reencrypt-tokens   re-encrypt every stored token set under the first key
    python -m gcal env-example        print .env.example: every GCAL_* setting, its default

Key rotation: put a new key first in ``GCAL_TOKEN_KEYS`` (keep the old ones after it), roll
out the processes, run ``reencrypt-tokens``, then drop the old keys. ``reencrypt-tokens``
exits 1 if some token sets open with none of the keys (a key is missing from the list).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from redis.asyncio import Redis

from gcal.crypto import Cipher, generate_key
from gcal.envfile import render
from gcal.keys import RedisKeys
from gcal.settings import Settings
from gcal.tokens import Rotation, TokenStore


async def _reencrypt(settings: Settings) -> Rotation:
    redis = Redis.from_url(str(settings.redis_url))
    try:
        store = TokenStore(redis, RedisKeys(settings.redis_prefix), Cipher(settings.token_keys))
        return await store.rotate_all()
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gcal", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["new-key", "reencrypt-tokens", "env-example"])
    args = parser.parse_args(argv)
    if args.command == "new-key":
        print(generate_key())  # noqa: T201
        return 0
    if args.command == "env-example":
        sys.stdout.write(render())
        return 0
    settings = Settings()
    if not settings.token_keys:
        print("GCAL_TOKEN_KEYS is not set", file=sys.stderr)  # noqa: T201
        return 2
    rotation = asyncio.run(_reencrypt(settings))
    print(f"re-encrypted {rotation.changed} token sets under the current key")  # noqa: T201
    if rotation.unreadable:
        # Keys were rotated out of order: stop before dropping any more of them.
        print(  # noqa: T201
            f"{rotation.unreadable} token sets open with none of GCAL_TOKEN_KEYS and were left "
            "as they are: add the missing key back and run this again (until then their "
            "users are asked to link their account again)",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
