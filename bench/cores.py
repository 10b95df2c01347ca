"""The machine's cores during a comparison: who runs where, and what a process cost.

    with driver_off_the_worker_core():    # this process moves to the emulator's core
        share = CoreShare(worker_pid)     # ... a run ...
        share.others_percent()            # other processes' CPU on the worker's core
        peak_rss_mib(worker_pid)

The worker is pinned to :data:`WORKER_CPU` and the emulator to :data:`EMULATOR_CPU` (by
``taskset``: ``bench.children.pinned``). Redis and whatever else
the machine runs are not pinned; :class:`CoreShare` says how much of the worker's core they
took, from ``/proc/stat``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from bench.children import EMULATOR_CPU, WORKER_CPU
from bench.emulator_rate import cpu_seconds


def core_busy_seconds(core: int) -> float:
    """CPU time every process has spent on ``core`` so far (``/proc/stat``, all but idle and
    iowait; steal too, as the hypervisor's other guests had it)."""
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name == f"cpu{core}":
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, ticks[:8])
            return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    raise LookupError(f"no cpu{core} in /proc/stat")


class CoreShare:
    """From now on: how much of the worker's core went to other processes (% of wall time)."""

    def __init__(self, worker_pid: int, core: int = WORKER_CPU) -> None:
        self._pid, self._core = worker_pid, core
        self._t0 = time.perf_counter()
        self._busy0 = core_busy_seconds(core)
        self._worker0 = cpu_seconds(worker_pid)

    def others_percent(self) -> float:
        wall = time.perf_counter() - self._t0
        busy = core_busy_seconds(self._core) - self._busy0
        worker = cpu_seconds(self._pid) - self._worker0
        return max(0.0, 100 * (busy - worker) / wall)  # ticks are 10 ms: never below 0


class CoresBusy:
    """From now on: how busy the worker's core and the other one (emulator, Redis, driver)
    were, every process counted (% of wall time)."""

    def __init__(self) -> None:
        self._t0 = time.perf_counter()
        self._busy0 = {core: core_busy_seconds(core) for core in (WORKER_CPU, EMULATOR_CPU)}

    def percent(self) -> tuple[float, float]:
        """(worker core, other core)."""
        wall = time.perf_counter() - self._t0
        # /proc/stat counts 10 ms ticks, late: a short run can read above 100.
        worker, other = (
            min(100.0, 100 * (core_busy_seconds(core) - busy0) / wall)
            for core, busy0 in self._busy0.items()
        )
        return worker, other


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set size so far (``VmHWM``), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no VmHWM for process {pid}")


@contextlib.contextmanager
def driver_off_the_worker_core() -> Iterator[None]:
    """Run this process (the load driver) on the emulator's core, leaving the worker's core to
    the worker: on a contended core the scheduler shares by thread, which would favour a
    16-thread worker over a one-thread one. Restored afterwards (the test suite runs this)."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) <= WORKER_CPU:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {EMULATOR_CPU})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
