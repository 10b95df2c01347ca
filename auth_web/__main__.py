"""``python -m auth_web``: serve the OAuth web flow with settings from ``GCAL_*``.

``python -m auth_web --check`` is its health probe: exit 0 when ``/healthz`` answers, else 1.
Bad configuration exits with status 2, one line per bad setting.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiohttp import web

from auth_web.app import create_app
from auth_web.health import probe
from gcal import logs
from gcal.environment import settings_or_exit

PROG = "python -m auth_web"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n")[0],
        epilog="Settings: GCAL_* environment variables; see `python -m gcal env-example`. "
        "It listens on GCAL_AUTH_WEB_HOST:GCAL_AUTH_WEB_PORT.",
    )
    parser.add_argument("--check", action="store_true", help="exit 0 if auth_web answers")
    args = parser.parse_args(argv)
    only = ("auth_web_host", "auth_web_port") if args.check else None
    settings = settings_or_exit(PROG, only=only)
    logs.configure(settings.log_format, settings.log_level)
    if args.check:
        return 0 if asyncio.run(probe(settings)) else 1
    web.run_app(
        create_app(settings),
        host=settings.auth_web_host,
        port=settings.auth_web_port,
        access_log=None,
        print=lambda msg: print(msg, flush=True),  # noqa: T201 - the one startup line
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
