"""How many events.list (250-event pages) and events.insert calls the emulator serves per core.

The emulator runs as its own process, pinned to one CPU where ``taskset`` exists, and this
process drives it over HTTP from the other. For each scenario the report gives the wall-clock
rate and the emulator's CPU time per request (read from ``/proc``), so that "requests per
second on one core" is ``1 / CPU per request`` whatever the load generator's own speed (CPU
time comes from ``/proc/PID/task/*/schedstat``, in nanoseconds). The
baseline, measured in the same run on the same server, is the cheapest full HTTP round trip
(``GET /_emulator/healthz``); every scenario is also reported as a ratio of it.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.children import EMULATOR_CPU, pinned, stop

EVENTS_SCOPE = "https://www.googleapis.com/auth/calendar.events"
CONCURRENCY = 16


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    wall_s: float
    cpu_s: float

    @property
    def wall_rate(self) -> float:
        return self.requests / self.wall_s

    @property
    def per_core_rate(self) -> float:
        return self.requests / self.cpu_s if self.cpu_s else float("inf")


def cpu_seconds(pid: int) -> float:
    """CPU time all threads of process ``pid`` have used so far (ns resolution, Linux)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return sum(int((task / "schedstat").read_text().split()[0]) for task in tasks) / 1e9


class EmulatorProcess:
    """``python -m emulator --port 0`` in a child process, pinned to CPU 0 if possible."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def __aenter__(self) -> EmulatorProcess:
        argv = [sys.executable, "-m", "emulator", "--port", "0", "--log-level", "WARNING"]
        self.proc = await asyncio.create_subprocess_exec(
            *pinned(argv, EMULATOR_CPU), stdout=asyncio.subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=30)
        self.url = line.decode().strip().rsplit(" ", 1)[-1]
        assert self.url.startswith("http://"), line
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        await stop(self.proc)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


async def measure(
    name: str, pid: int, requests: int, one: Callable[[int], Awaitable[None]]
) -> Result:
    """Run ``one(i)`` for i in range(requests), CONCURRENCY at a time."""
    counter = itertools.count()

    async def lane() -> None:
        while (i := next(counter)) < requests:
            await one(i)

    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(lane() for _ in range(CONCURRENCY))), timeout=300)
    return Result(name, requests, time.perf_counter() - t0, cpu_seconds(pid) - cpu0)


async def main(*, quick: bool = False) -> list[Result]:
    n = 300 if quick else 3000
    accounts = 20
    async with (
        EmulatorProcess() as emu,
        aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=CONCURRENCY), raise_for_status=True
        ) as http,
    ):
        seeded = await (
            await http.post(
                f"{emu.url}/_emulator/seed",
                json={
                    "accounts": accounts,
                    "events_per_calendar": 250,
                    "grant": {"scopes": [EVENTS_SCOPE]},
                },
            )
        ).json()
        tokens = [t["access_token"] for t in seeded["tokens"].values()]
        headers = [{"Authorization": f"Bearer {t}"} for t in tokens]
        base = f"{emu.url}/calendar/v3/calendars/primary/events"

        async def healthz(i: int) -> None:
            async with http.get(f"{emu.url}/_emulator/healthz") as resp:
                await resp.read()

        async def list_page(i: int) -> None:
            async with http.get(
                base, params={"maxResults": "250"}, headers=headers[i % accounts]
            ) as resp:
                body: dict[str, Any] = await resp.json()
                assert len(body["items"]) == 250

        async def insert(i: int) -> None:
            event = {
                "summary": f"bench {i}",
                "start": {"dateTime": "2026-12-01T10:00:00Z"},
                "end": {"dateTime": "2026-12-01T10:30:00Z"},
            }
            async with http.post(base, json=event, headers=headers[i % accounts]) as resp:
                await resp.read()

        # Warm up every calendar (materializes the seeded events) before measuring.
        await measure("warm-up", emu.pid, accounts * 2, list_page)
        results = [
            await measure("baseline: GET /_emulator/healthz", emu.pid, n, healthz),
            await measure("events.list, 250-event pages", emu.pid, n, list_page),
            await measure("events.insert", emu.pid, n, insert),
        ]
    report(results)
    return results


def report(results: list[Result]) -> None:
    base = results[0]
    print(f"emulator, one core (concurrency {CONCURRENCY}, {base.requests} requests each)")
    print(f"{'scenario':36} {'wall req/s':>11} {'CPU us/req':>11} {'req/s/core':>11} {'ratio':>7}")
    for r in results:
        ratio = r.per_core_rate / base.per_core_rate
        print(
            f"{r.name:36} {r.wall_rate:11.0f} {1e6 * r.cpu_s / r.requests:11.0f} "
            f"{r.per_core_rate:11.0f} {ratio:7.2f}"
        )
