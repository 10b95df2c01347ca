"""``python -m worker``: run a worker; ``python -m worker --check``: health probe (exit 0/1).

Settings come from ``GCAL_*`` variables (``python -m gcal env-example`` lists them all);
``--check`` reads only ``GCAL_REDIS_URL`` and ``GCAL_REDIS_PREFIX``. SIGTERM stops taking jobs
and gives running ones ``GCAL_WORKER_DRAIN_SECONDS`` to finish; an unfinished job is re-run by
another worker. Prometheus metrics are served on ``GCAL_WORKER_METRICS_PORT`` (0: off).
Bad configuration exits with status 2, one line per bad setting.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from gcal import logs
from gcal.environment import REDIS, settings_or_exit
from gcal.keys import RedisKeys
from worker import health
from worker.factory import create_worker, new_event_loop
from worker.metrics_server import MetricsPortError

PROG = "python -m worker"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n")[0],
        epilog="Settings: GCAL_* environment variables; see `python -m gcal env-example`.",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 0 if a worker on this host is alive, else 1"
    )
    parser.add_argument("--burst", action="store_true", help="stop when the queue is empty")
    args = parser.parse_args(argv)
    settings = settings_or_exit(PROG, only=REDIS if args.check else None)
    logs.configure(settings.log_format, settings.log_level)
    if args.check:
        return asyncio.run(health.check(str(settings.redis_url), RedisKeys(settings.redis_prefix)))
    asyncio.set_event_loop(new_event_loop(settings))
    try:
        create_worker(settings, burst=args.burst).run()
    except MetricsPortError as err:
        print(f"{PROG}: bad configuration: {err}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
