"""``python -m worker``: run a worker; ``python -m worker --check``: health probe (exit 0/1).

Settings come from ``GCAL_*`` (see README). SIGTERM stops taking jobs and gives running ones
``GCAL_WORKER_DRAIN_SECONDS`` to finish; an unfinished job is re-run by another worker.
Prometheus metrics are served on ``GCAL_WORKER_METRICS_PORT`` (0: off).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from gcal import logs
from gcal.keys import RedisKeys
from gcal.settings import Settings
from worker import health
from worker.factory import create_worker
from worker.metrics_server import MetricsPortError

PROG = "python -m worker"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 0 if a worker is healthy")
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    args = parser.parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_format, settings.log_level)
    if args.check:
        return asyncio.run(health.check(str(settings.redis_url), RedisKeys(settings.redis_prefix)))
    try:
        create_worker(settings, burst=args.burst).run()
    except MetricsPortError as err:
        print(f"{PROG}: bad configuration: {err}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
