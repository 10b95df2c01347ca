"""auth_web as its own process, for the benchmarks that need its webhook: what
``python -m auth_web`` runs, with a run's settings, on a free port of 127.0.0.1.

    async with AuthWebProcess(env.settings_json) as auth_web:
        webhook = f"{auth_web.url}/webhooks/google/calendar"

It is pinned to the emulator's CPU (``bench.children``) where ``taskset`` exists, leaving the
worker's core to the worker; its exit code lands in ``returncode`` (0: a clean SIGTERM).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.children import EMULATOR_CPU, own_env, pinned, stop
from bench.worker_child import ROOT
from devstack.redis_server import free_port
from gcal.envfile import env_name, process_value


async def wait_for(check: Callable[[], Awaitable[bool]], what: str, within: float) -> None:
    """Poll a condition of the processes under test until it holds, or fail."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def settings_env(values: dict[str, Any]) -> dict[str, str]:
    """Settings fields as the ``GCAL_*`` environment a process reads."""
    return {
        env_name(name): process_value(value) for name, value in values.items() if value is not None
    }


class AuthWebProcess:
    """``python -m auth_web`` on a free port with a run's settings, on the emulator's core."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.port = free_port()
        self.settings = {
            **settings,
            "auth_web_host": "127.0.0.1",
            "auth_web_port": self.port,
            "log_level": "WARNING",
        }
        self.proc: asyncio.subprocess.Process | None = None
        self.returncode: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> AuthWebProcess:
        self.proc = await asyncio.create_subprocess_exec(
            *pinned([sys.executable, "-m", "auth_web"], EMULATOR_CPU),
            cwd=ROOT,
            env={**own_env(), **settings_env(self.settings)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,  # its one "Running on" line
        )
        async with aiohttp.ClientSession() as http:

            async def up() -> bool:
                assert self.proc is not None
                if self.proc.returncode is not None:
                    raise RuntimeError(f"auth_web exited ({self.proc.returncode})")
                try:
                    async with http.get(f"{self.url}/healthz") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            try:
                await wait_for(up, "auth_web to answer", within=30)
            except BaseException:
                await self.__aexit__()
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.returncode = await stop(self.proc)
