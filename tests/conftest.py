"""Shared fixtures: the emulator (in-loop or threaded), as factories."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from aiohttp import web

from emulator.config import EmulatorConfig
from tests.harness import Emulator, ThreadedEmulator, start_in_loop

MakeEmulator = Callable[..., Awaitable[Emulator]]


@pytest.fixture
async def make_emulator() -> AsyncIterator[MakeEmulator]:
    """Start emulators in the test's loop: ``emu = await make_emulator(auto_approve=True)``."""
    runners: list[web.AppRunner] = []

    async def make(config: EmulatorConfig | None = None, **changes: object) -> Emulator:
        config = dataclasses.replace(config or EmulatorConfig(), **changes)  # type: ignore[arg-type]
        emulator, runner = await start_in_loop(config)
        runners.append(runner)
        return emulator

    yield make
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def emulator(make_emulator: MakeEmulator) -> Emulator:
    """An emulator with the default configuration, served in the test's loop."""
    return await make_emulator()


@pytest.fixture
def threaded_emulator() -> Iterator[Emulator]:
    """An emulator served from its own thread, for synchronous clients (googleapiclient)."""
    server = ThreadedEmulator(EmulatorConfig())
    emulator = server.start()
    yield emulator
    server.stop()
