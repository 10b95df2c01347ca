"""``python -m gcal``: operator commands for the token store and the settings.

    python -m gcal new-key            print a new encryption key for GCAL_TOKEN_KEYS
    python -m gcal reencrypt-tokens   re-encrypt every stored token set under the first key
    python -m gcal env-example        print .env.example: every GCAL_* setting, its default
    python -m gcal write-readme       rewrite the README's configuration table from Settings

Key rotation: put a new key first in ``GCAL_TOKEN_KEYS`` (keep the old ones after it), roll
out the processes, run ``reencrypt-tokens``, then drop the old keys. ``reencrypt-tokens``
reads only ``GCAL_REDIS_URL``, ``GCAL_REDIS_PREFIX`` and ``GCAL_TOKEN_KEYS``, reports its
progress on stderr, and exits 1 if some token sets open with none of the keys (a key is
missing from the list).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from redis.asyncio import Redis

from gcal import logs, settings_table
from gcal.crypto import Cipher, generate_key
from gcal.envfile import render
from gcal.environment import REDIS, settings_or_exit
from gcal.keys import RedisKeys
from gcal.settings import Settings
from gcal.tokens import Rotation, TokenStore

PROG = "python -m gcal"
# A progress line at least this often (token sets checked, seconds), and at the end.
PROGRESS_EVERY = 500
PROGRESS_SECONDS = 2.0


class Progress:
    """Progress of a long command, as lines on stderr."""

    def __init__(self, command: str) -> None:
        self._command = command
        self._last = time.monotonic()

    def __call__(self, checked: int, changed: int) -> None:
        now = time.monotonic()
        if checked % PROGRESS_EVERY == 0 or now - self._last >= PROGRESS_SECONDS:
            self._last = now
            self._line(f"{checked} token sets checked, {changed} re-encrypted so far")

    def _line(self, text: str) -> None:
        print(f"{self._command}: {text}", file=sys.stderr, flush=True)  # noqa: T201


async def _reencrypt(settings: Settings) -> Rotation:
    redis = Redis.from_url(str(settings.redis_url))
    try:
        store = TokenStore(redis, RedisKeys(settings.redis_prefix), Cipher(settings.token_keys))
        return await store.rotate_all(progress=Progress("reencrypt-tokens"))
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[2:7]),
    )
    parser.add_argument(
        "command", choices=["new-key", "reencrypt-tokens", "env-example", "write-readme"]
    )
    args = parser.parse_args(argv)
    if args.command == "new-key":
        print(generate_key())  # noqa: T201
        return 0
    if args.command == "env-example":
        sys.stdout.write(render())
        return 0
    if args.command == "write-readme":
        print(settings_table.write())  # noqa: T201
        return 0
    settings = settings_or_exit(PROG, only=(*REDIS, "token_keys"))
    logs.configure(settings.log_format, settings.log_level)
    if not settings.token_keys:
        print(f"{PROG}: bad configuration: GCAL_TOKEN_KEYS is not set", file=sys.stderr)  # noqa: T201
        return 2
    try:
        Cipher(settings.token_keys)
    except ValueError as err:
        print(f"{PROG}: bad configuration: GCAL_TOKEN_KEYS: {err}", file=sys.stderr)  # noqa: T201
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
