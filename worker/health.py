"""``python -m worker --check``: is a worker process alive on this host?

Each worker refreshes its own health record, ``<p>:workers:<host>:<pid>`` (arq's health-check
key, one per process, every few seconds). The probe runs where the worker runs (a container's
HEALTHCHECK, a sidecar), so beside the record it checks that the process it names still
exists: a worker that died is reported at once, not when its record expires.
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from redis.asyncio import Redis

from gcal.keys import RedisKeys

log = logging.getLogger(__name__)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie, dead but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: the signal check is all there is
    return state != "Z"


async def healthy_workers(redis: Redis, keys: RedisKeys, host: str | None = None) -> list[int]:
    """Pids of the live workers on ``host`` (this host by default) with a fresh record."""
    host = host or socket.gethostname()
    pids = []
    async for key in redis.scan_iter(match=keys.worker_health_pattern(host), count=100):
        try:
            pid = int(key.rsplit(b":", 1)[1])
        except ValueError:
            continue
        if process_alive(pid):
            pids.append(pid)
    return sorted(pids)


async def check(redis_url: str, keys: RedisKeys) -> int:
    """Exit code of the probe: 0 when a worker on this host is alive, else 1."""
    redis = Redis.from_url(redis_url)
    try:
        pids = await healthy_workers(redis, keys)
    finally:
        await redis.aclose()
    if not pids:
        log.warning("no live worker on this host")
        return 1
    log.info("live workers on this host: %s", " ".join(map(str, pids)))
    return 0
