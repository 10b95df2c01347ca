"""``python -m auth_web``: serve the OAuth web flow with settings from ``GCAL_*``."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from auth_web.app import create_app
from gcal.settings import Settings


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    settings = Settings()
    web.run_app(
        create_app(settings),
        host=settings.auth_web_host,
        port=settings.auth_web_port,
        access_log=None,
        print=lambda msg: print(msg, flush=True),  # noqa: T201 - the one startup line
    )


if __name__ == "__main__":
    main()
