"""What this machine charges a process that idles between bursts of work: measured on the
worker's core, in the comparison's own invocation, so that its CPU per job below saturation
can be read against it.

    python -m bench.idle_cost [UNITS]        # one JSON line on stdout

One unit of Python work (decode a small JSON document, walk it, encode it again: about a
tenth of a millisecond) is timed by the thread's CPU clock three ways: back to back; with the
process asleep for :data:`GAP_SECONDS` after each unit, as a worker below saturation waits
for its next job; and the sleep alone. Where a core keeps its caches and its clock warm over
a short idle, the second costs the first plus the third; on a virtual machine it can cost
well more (seen here: a unit 1.2-2.0 times as much after a millisecond asleep, and each sleep
and wake 32-47 us). The comparison's jobs pay the same, once per wait for Redis or Google
that finds nothing ready, which is more often per job the fewer jobs there are.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.children import WORKER_CPU, own_env, pinned

GAP_SECONDS = 0.001
ROOT = Path(__file__).resolve().parent.parent
_DOCUMENT = json.dumps(
    {
        "items": [
            {
                "id": f"event{i}",
                "summary": f"meeting {i}",
                "start": {"dateTime": "2026-12-01T10:00:00Z"},
                "end": {"dateTime": "2026-12-01T10:30:00Z"},
                "sequence": i,
            }
            for i in range(40)
        ]
    }
)


@dataclass(frozen=True)
class IdleCost:
    """CPU microseconds per unit: back to back, with a sleep after each, and the sleep alone."""

    busy_us: float
    gapped_us: float
    sleep_us: float

    @property
    def penalty(self) -> float:
        """How many times a unit's own cost it costs after the core has idled."""
        return (self.gapped_us - self.sleep_us) / self.busy_us


def unit() -> int:
    page: dict[str, list[dict[str, Any]]] = json.loads(_DOCUMENT)
    total: int = sum(len(event["summary"]) + event["sequence"] for event in page["items"])
    return total + len(json.dumps(page))


def _cpu_us_per_unit(units: int, work: Callable[[], object], gap: float) -> float:
    start = time.thread_time()
    for _ in range(units):
        work()
        if gap:
            time.sleep(gap)  # not on a loop: this process only measures
    return 1e6 * (time.thread_time() - start) / units


def measure(units: int) -> IdleCost:
    """Each way twice, interleaved (busy, gapped, sleep, busy, gapped, sleep); the lower of
    each pair, as the machine's speed drifts."""
    runs: dict[str, list[float]] = {"busy": [], "gapped": [], "sleep": []}
    _cpu_us_per_unit(units // 10 or 1, unit, 0)  # warm up
    for _ in range(2):
        runs["busy"].append(_cpu_us_per_unit(units, unit, 0))
        runs["gapped"].append(_cpu_us_per_unit(units, unit, GAP_SECONDS))
        runs["sleep"].append(_cpu_us_per_unit(units, lambda: None, GAP_SECONDS))
    return IdleCost(min(runs["busy"]), min(runs["gapped"]), min(runs["sleep"]))


async def on_worker_core(units: int) -> IdleCost:
    """:func:`measure` in a child process pinned to the worker's core."""
    proc = await asyncio.create_subprocess_exec(
        *pinned([sys.executable, "-m", "bench.idle_cost", str(units)], WORKER_CPU),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=own_env(),
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.idle_cost exited {proc.returncode}")
    return IdleCost(**json.loads(out))


def main(argv: list[str]) -> int:
    units = int(argv[0]) if argv else 2000
    print(json.dumps(dataclasses.asdict(measure(units))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
