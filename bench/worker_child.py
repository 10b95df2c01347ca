"""The benchmarked worker as a child process: its entry point and the parent's handle on it.

    python -m bench.worker_child < CONFIG_JSON

The configuration arrives on stdin (it holds a throwaway token key, kept out of ``ps``):
``{"worker": "gcal" | "noop" | "noop-tuned", "settings": {<Settings fields>}}``. ``gcal``
runs the product's worker exactly as ``python -m worker`` builds it
(``create_worker(settings).run()``); ``noop`` runs a plain arq :class:`~arq.worker.Worker`
with the same poll delay, ``max_jobs``, JSON serializer, result retention and health check,
whose only function (:data:`NOOP_JOB`) returns at once: the cost of arq itself.
``noop-tuned`` is the same on the Redis pool the product's worker runs on
(``worker.redis_pool``): the cost of arq with that pool. Each prints ``ready`` on stdout once its
``on_startup`` has run, and exits (code 0) on SIGTERM, as arq handles it.

:class:`WorkerProcess` starts one, pinned to a CPU with ``taskset`` where possible, so that
the parent can read its CPU time from ``/proc`` (see ``bench.emulator_rate.cpu_seconds``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from arq.worker import Worker, func

from bench.children import own_env, pinned, stop
from gcal.settings import Settings
from worker.factory import create_worker, new_event_loop, worker_options
from worker.redis_pool import tuned_arq_pool

# The no-op worker's one function; the parent enqueues it by this name.
NOOP_JOB = "bench_noop"
READY = "ready"
ROOT = Path(__file__).resolve().parent.parent

Hook = Callable[[dict[str, Any]], Awaitable[None]]


async def noop(ctx: dict[str, Any], **arguments: Any) -> None:
    """Does nothing: what is left is arq's own cost of running a job. It takes what the
    shared deserializer (``jobs.wire.loads_job``) hands every job, ``arguments``: without
    it, every no-op job failed, and the ceiling measured arq's error path instead."""


# arq polls on a timer; the product's worker is woken instead. The ceiling polls at the delay
# that gave arq its best loaded throughput (bench.jobs_rate's poll-delay part: 0.01 s).
CEILING_POLL_DELAY = 0.01


class TunedPoolWorker(Worker):
    """arq's worker on the product worker's Redis pool, and nothing else of the product."""

    async def main(self) -> None:
        if self._pool is None:
            self._pool = await tuned_arq_pool(self)
        await super().main()


def noop_worker(settings: Settings, *, tuned_pool: bool = False) -> Worker:
    """arq's worker with ``create_worker``'s options, minus everything of the product, polling
    at arq's best delay rather than the product's (longer) idle one; ``tuned_pool``: on the
    product worker's Redis pool."""
    options = {**worker_options(settings), "poll_delay": CEILING_POLL_DELAY}
    kind = TunedPoolWorker if tuned_pool else Worker
    return kind(functions=[func(noop, name=NOOP_JOB)], **options)


def announce_ready(worker: Worker) -> None:
    """Print ``ready`` after the worker's own ``on_startup`` (if any) has run."""
    inner: Hook | None = worker.on_startup

    async def on_startup(ctx: dict[str, Any]) -> None:
        if inner is not None:
            await inner(ctx)
        print(READY, flush=True)

    worker.on_startup = on_startup


def main() -> int:
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    config = json.loads(sys.stdin.read())
    settings = Settings(**config["settings"])
    asyncio.set_event_loop(new_event_loop(settings))  # as python -m worker does
    kind = config["worker"]
    worker = (
        create_worker(settings)
        if kind == "gcal"
        else noop_worker(settings, tuned_pool=kind == "noop-tuned")
    )
    announce_ready(worker)
    worker.run()  # returns after SIGTERM (arq's handler), having closed its connections
    return 0


class WorkerProcess:
    """``python -m bench.worker_child`` in a child process, pinned to ``cpu`` if possible.

    A subclass may start another module (:attr:`module`) with another configuration
    (:meth:`config`), as long as it reads stdin and prints ``ready`` the same way."""

    module = "bench.worker_child"

    def __init__(self, kind: str, settings: dict[str, Any], *, cpu: int = 1) -> None:
        self.kind = kind
        self.settings = settings
        self.cpu = cpu
        self.proc: asyncio.subprocess.Process | None = None
        self.returncode: int | None = None

    async def __aenter__(self) -> WorkerProcess:
        self.proc = await asyncio.create_subprocess_exec(
            *pinned([sys.executable, "-m", self.module], self.cpu),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=own_env(),
        )
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write(self.config().encode())
        self.proc.stdin.close()
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=30)
        except BaseException:
            await self.stop()
            raise
        if line.decode().strip() != READY:
            await self.stop()
            raise RuntimeError(f"the {self.kind} worker did not start (exit {self.returncode})")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def config(self) -> str:
        """What the child reads from stdin."""
        return json.dumps({"worker": self.kind, "settings": self.settings})

    async def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 10 s); the exit code lands in ``returncode``."""
        assert self.proc is not None
        self.returncode = await stop(self.proc)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


if __name__ == "__main__":
    sys.exit(main())
