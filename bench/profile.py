"""Where a worker spends its CPU on one job kind: a py-spy profile of the worker process under
load, summarised as text (issue 11: profiles kept next to the numbers they explain).

    python -m bench profile [--page 250] [--latency-ms 0] [--seconds 10] [--label before]

The worker (``python -m bench.worker_child``, the product's worker, pinned to CPU 1) runs a
closed-loop load like ``bench.jobs_rate``'s while ``py-spy record`` samples it; the summary
lists the functions by self time and by inclusive time (the share of samples whose stack they
are on), plus the CPU ms per job measured over the same run. Idle samples (the event loop
waiting) are left out. py-spy needs ptrace: root, or ``kernel.yama.ptrace_scope`` 0.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import uvloop

from bench.emulator_rate import cpu_seconds
from bench.jobs_env import JOB_TIMEOUT, bench_env
from bench.jobs_rate import get_events_job
from bench.load import lanes
from jobs.client import JobClient

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:]+)(?::\d+)?\)$")
# Frames that are the event loop waiting, not work.
_IDLE = ("select (selectors.py", "_run_once (asyncio/base_events.py")
PROFILES = Path(__file__).resolve().parent / "profiles"
SITE = re.compile(r".*/(site-packages|lib/python3\.\d+)/")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    file = SITE.sub("", match["file"]).replace(str(Path.cwd()) + "/", "")
    return f"{match['func']} ({file})"


def summarise(raw: str, *, top: int = 30) -> str:
    """A py-spy ``--format raw`` (collapsed stacks) record as two ranked tables."""
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_short(f) for f in stack.split(";")[1:]]  # [0] is the thread
        if not frames or frames[-1].startswith(_IDLE):
            continue
        count = int(count_text)
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no busy samples\n"
    out = [f"busy samples: {total}", "", "self %  function"]
    out += [f"{100 * n / total:6.1f}  {f}" for f, n in self_time.most_common(top)]
    out += ["", "incl %  function"]
    out += [f"{100 * n / total:6.1f}  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(out) + "\n"


def py_spy() -> str:
    """The py-spy of this environment (the bench extra pins it)."""
    beside = Path(sys.executable).with_name("py-spy")
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: ./dev bench installs it (the bench extra)")
    return found


def run(*, job: str, page: int, latency_ms: int, seconds: float, label: str, out: Path) -> Path:
    """Profile, write the summary to ``out``, print it; returns the file."""
    raw, done, cpu, wall = uvloop.run(
        _record(py_spy(), job=job, page=page, latency_ms=latency_ms, seconds=seconds)
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{job}-{page}-{label}.txt"
    header = (
        f"{job}, {page}-event page, +{latency_ms} ms, one worker on CPU 1 ({label})\n"
        f"{done} jobs in {wall:.1f} s: {done / wall:.0f} jobs/s, "
        f"worker CPU {1000 * cpu / max(done, 1):.2f} ms/job\n\n"
    )
    path.write_text(header + summarise(raw))
    print(path.read_text())
    return path


async def _record(
    spy: str, *, job: str, page: int, latency_ms: int, seconds: float
) -> tuple[str, int, float, float]:
    async with bench_env(20) as bench:
        env = bench.env
        await env.set_latency(bench.http, latency_ms)
        # Redis beside the emulator, off the worker's core: py-spy samples wall time, and
        # Redis woken on the worker's core would show as time in the worker's socket writes.
        os.sched_setaffinity(bench.redis_server.proc.pid, {0})
        async with JobClient(env.redis, env.keys) as client, env.worker("gcal") as worker:
            one = get_events_job(env, client, page) if job == "get_events" else None
            assert one is not None, "only get_events is profiled so far"
            await lanes(len(env.users) * 3, 30, 100, one)  # warm-up
            with tempfile.TemporaryDirectory() as tmp:
                record = Path(tmp) / "raw.txt"
                proc = await asyncio.create_subprocess_exec(
                    spy, "record", "--pid", str(worker.pid), "--format", "raw",
                    "--rate", "250", "--duration", str(int(seconds)), "--nonblocking",
                    "-o", str(record),
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.DEVNULL,
                )  # fmt: skip
                cpu0, t0 = cpu_seconds(worker.pid), time.perf_counter()
                done, _ = await lanes(10**9, seconds, 100, one)
                cpu = cpu_seconds(worker.pid) - cpu0
                wall = time.perf_counter() - t0
                await asyncio.wait_for(proc.wait(), JOB_TIMEOUT)
                raw = await asyncio.to_thread(record.read_text)
    return raw, done, cpu, wall
