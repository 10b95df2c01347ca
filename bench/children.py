"""The benchmark's child processes (the emulator, workers, auth_web): where they run, what
environment they get, and how they are stopped.

    proc = await asyncio.create_subprocess_exec(*pinned(argv, cpu), env=own_env())
    ...
    returncode = await stop(proc)
"""

from __future__ import annotations

import asyncio
import os
import shutil

WORKER_CPU = 1  # the worker under measurement
EMULATOR_CPU = 0  # the emulator, auth_web and the driver: everything but the worker


def pinned(argv: list[str], cpu: int) -> list[str]:
    """``argv`` run on CPU ``cpu`` alone (``taskset``), where the machine has more than one
    CPU and taskset is installed; else ``argv`` as it is."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > max(cpu, 1):
        return ["taskset", "-c", str(cpu), *argv]
    return argv


def own_env() -> dict[str, str]:
    """This process's environment without its ``GCAL_*`` settings: only what the benchmark
    passes decides a child's settings, never the caller's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GCAL_")}


async def stop(proc: asyncio.subprocess.Process, *, grace: float = 10) -> int | None:
    """SIGTERM, then wait (SIGKILL after ``grace`` seconds); the exit code."""
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    return proc.returncode
