"""Shared fixtures: this session's own Redis server, the emulator (in-loop or threaded), as
factories."""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
import stamina
from aiohttp import web
from redis.asyncio import Redis

from devstack.redis_server import RedisServer, RedisServerError, find_binary
from emulator.config import EmulatorConfig
from tests.harness import Emulator, ThreadedEmulator, start_in_loop
from tests.metrics_lint import promtool
from tests.services import AuthWeb, start_auth_web

MakeEmulator = Callable[..., Awaitable[Emulator]]
MakeAuthWeb = Callable[..., Awaitable[AuthWeb]]


def pytest_report_header() -> list[str]:
    """Which server binary the session's Redis runs, and whether promtool checks the metrics
    pages (CI logs show both)."""
    tool = promtool()
    lines = [f"promtool: {tool}" if tool else "promtool: not on PATH (our own checks only)"]
    try:
        binary = find_binary()
    except RedisServerError as err:
        return [f"redis server: {err}", *lines]
    return [f"redis server: {binary.origin} ({binary.path})", *lines]


@pytest.fixture(scope="session", autouse=True)
def redis_server() -> Iterator[RedisServer]:
    """A real Redis server of this test session's own, on a free 127.0.0.1 port, stopped at
    the end: tests never touch another process's Redis (nor need one running). Without a
    server binary every test fails, none skips.

    ``GCAL_REDIS_URL`` points at it for the whole session, so that a ``Settings`` built from
    defaults, here or in a child process, can never reach 127.0.0.1:6379."""
    with RedisServer.start() as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("GCAL_REDIS_URL", server.url)
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """Where this session's Redis server answers."""
    return redis_server.url


@pytest.fixture
def redis_cli() -> str:
    """The path of ``redis-cli``, which the shell examples speak Redis with; without it the
    test fails (``.ci/run`` installs Debian's redis-tools), never skips."""
    path = shutil.which("redis-cli")
    if path is None:
        pytest.fail("this test needs redis-cli (apt-get install redis-tools)")
    return path


@pytest.fixture(autouse=True)
def _no_retry_backoff() -> Iterator[None]:
    """In-call retries keep their attempt count but do not wait between attempts."""
    with stamina.set_testing(True, attempts=3):
        yield


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


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of this session's Redis server."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def redis_prefix(redis: Redis) -> AsyncIterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def make_auth_web(
    emulator: Emulator, redis_url: str, redis_prefix: str
) -> AsyncIterator[MakeAuthWeb]:
    """Start auth_web against ``emulator`` and real Redis: ``await make_auth_web(**settings)``."""
    started: list[AuthWeb] = []

    async def make(**changes: object) -> AuthWeb:
        auth_web = await start_auth_web(
            emulator, redis_prefix, **{"redis_url": redis_url, **changes}
        )
        started.append(auth_web)
        return auth_web

    yield make
    for auth_web in started:
        await auth_web.runner.cleanup()
