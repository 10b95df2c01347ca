"""``./dev run`` (``python -m devstack``) as a person uses it: on ports of their choosing and
its own Redis, a user linked through the emulator and jobs run; Ctrl-C or SIGTERM stops every
process. With ``GCAL_REDIS_URL`` it uses that Redis (and leaves it running) instead. A port
that is taken, or a given Redis that does not answer, is an error naming it, and nothing starts.

devstack runs as a child process in a session of its own (so that the test can press Ctrl-C
at its process group, as a terminal does) with no ``GCAL_*`` variable of ours, in a temporary
working directory (its ``.devstack/`` token key goes there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from devstack.redis_server import free_port, server_pid
from gcal.keys import RedisKeys
from jobs.client import JobClient
from tests.metrics_lint import check_metrics, value
from tests.pipeline import wait_until_async

API_KEY = "dev-api-key"  # devstack's fixed dev-mode key
UP = "gcal-jobs dev stack is up"
EVENT = {
    "summary": "Planning",
    "start": {"dateTime": "2026-12-01T10:00:00+00:00"},
    "end": {"dateTime": "2026-12-01T10:30:00+00:00"},
}


@dataclass
class Devstack:
    proc: asyncio.subprocess.Process
    stderr: Path
    banner: str = ""

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")[-4000:]

    async def wait_until_up(self, within: float = 40) -> None:
        """Read stdout until the banner has been printed (or devstack exited: fail)."""
        assert self.proc.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(within):
            while not lines or lines[-1] != "Ctrl-C stops everything.":
                raw = await self.proc.stdout.readline()
                if not raw:
                    pytest.fail(f"devstack exited before it was up:\n{''.join(lines)}{self.log()}")
                lines.append(raw.decode().rstrip("\n"))
        self.banner = "\n".join(lines[lines.index(UP) :])

    async def exit_code(self, within: float = 30) -> int:
        """Wait for devstack to exit (draining its stdout); its exit code."""
        try:
            async with asyncio.timeout(within):
                out, _ = await self.proc.communicate()
        except TimeoutError:
            pytest.fail(f"devstack did not exit within {within}s:\n{self.log()}")
        assert self.proc.returncode is not None
        self.banner += out.decode()
        return self.proc.returncode

    def nothing_left_running(self) -> bool:
        """No process is left in devstack's process group (emulator, auth_web, worker)."""
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return True
        return False


@contextlib.asynccontextmanager
async def devstack(tmp_path: Path, *args: str, **gcal_env: str) -> AsyncIterator[Devstack]:
    """``python -m devstack ARGS`` with only the ``GCAL_*`` variables in ``gcal_env``; killed
    with its process group if still running at the end."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GCAL_")}
    env.update(gcal_env)
    if "--worker-metrics-port" not in args:
        args = (*args, "--worker-metrics-port", "0")  # the default port may be someone's
    stderr = tmp_path / "devstack.stderr"
    with stderr.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "devstack",
            *args,
            cwd=tmp_path,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )
    stack = Devstack(proc, stderr)
    try:
        yield stack
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.communicate()


def free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def refuses(port: int) -> bool:
    """Nothing accepts connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


async def link(http: aiohttp.ClientSession, auth_url: str, user_id: str, email: str) -> str:
    """Link ``user_id`` as a calling service and a browser would; the page's heading."""
    resp = await http.get(
        f"{auth_url}/auth/url/{user_id}",
        params={"login_hint": email},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert resp.status == 200, await resp.text()
    consent_url = (await resp.json())["url"]
    # The emulator (--auto-approve) approves as login_hint and redirects to auth_web's callback.
    page = await http.get(consent_url)
    assert page.status == 200, await page.text()
    assert str(page.url).startswith(f"{auth_url}/auth/callback")
    heading = re.search(r"<h1>(.*?)</h1>", await page.text())
    assert heading is not None
    return heading.group(1)


async def next_change(redis: Redis, keys: RedisKeys, *, within: float) -> dict[str, Any]:
    """The first change event on the notifications stream (what follow-changes.sh prints)."""
    cursor = b"0"
    async with asyncio.timeout(within):
        while True:
            read = await redis.xread({keys.notification_stream: cursor}, count=100, block=1000)
            for _, entries in read:
                for entry_id, fields in entries:
                    cursor = entry_id
                    if fields[b"type"].startswith(b"event_"):
                        change: dict[str, Any] = json.loads(fields[b"json"])
                        return change


async def test_a_first_run_links_a_user_runs_jobs_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    # Not the defaults: the redirect URI must follow.
    emulator_port, auth_port, metrics_port = free_ports(3)
    auth_url = f"http://127.0.0.1:{auth_port}"
    args = (
        *("--emulator-port", str(emulator_port), "--auth-port", str(auth_port)),
        *("--worker-metrics-port", str(metrics_port), "--auto-approve"),
    )
    async with devstack(tmp_path, *args) as stack:
        await stack.wait_until_up()
        found = re.search(
            r"^  redis +(redis://127\.0\.0\.1:(\d+)/0) +\(private: ", stack.banner, re.M
        )
        assert found is not None, stack.banner
        redis_url, redis_port = found.group(1), int(found.group(2))
        assert redis_port != 6379
        # The README's first job, as the banner says to run it.
        assert f"REDIS_URL={redis_url} examples/enqueue.sh list_calendars" in stack.banner

        # A browser keeps the consent cookie /auth/start sets (aiohttp skips IP hosts unless told).
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            assert await link(http, auth_url, "demo-user", "alice@example.com") == (
                "Google Calendar linked"
            )
        redis = Redis.from_url(redis_url)
        keys = RedisKeys("gcal")
        try:
            # The new account's first sync opens its calendar's push channel.
            watch = keys.push_watch("demo-user", "alice@example.com")
            await wait_until_async(lambda: redis.exists(watch), within=20)
            async with JobClient(redis, keys) as jobs:
                created = await jobs.run(
                    "create_event", {"user_id": "demo-user", "event": EVENT}, timeout=20
                )
                listed = await jobs.run("get_events", {"user_id": "demo-user"}, timeout=20)
                calendars = await jobs.run("list_calendars", {"user_id": "demo-user"}, timeout=20)
            assert created.data is not None
            # Pushed by the emulator to auth_web's webhook: on the stream long before a poll.
            change = await next_change(redis, keys, within=15)
        finally:
            await redis.aclose()
        assert change["type"] == "event_created"
        assert change["event_id"] == created.data["event"]["id"]
        assert calendars.ok, calendars.error
        assert created.ok, created.error
        assert listed.ok, listed.error
        assert listed.data is not None
        assert [e["summary"] for e in listed.data["events"]] == ["Planning"]
        assert f"metrics on http://127.0.0.1:{metrics_port}/metrics" in stack.banner
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp,
        ):
            page = await resp.text()
        check_metrics(page)
        assert value(page, "gcal_worker_jobs_total", job="create_event", result="ok") == 1

        os.killpg(stack.proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the group
        assert await stack.exit_code() == 0, stack.log()

    assert stack.nothing_left_running()
    assert server_pid(redis_port) is None  # the private Redis is gone
    assert refuses(redis_port)
    assert refuses(emulator_port)
    assert refuses(auth_port)
    assert refuses(metrics_port)


async def test_sigterm_stops_everything_too(tmp_path: Path) -> None:
    emulator_port, auth_port, redis_port = free_ports(3)
    args = ("--emulator-port", str(emulator_port), "--auth-port", str(auth_port))
    async with devstack(tmp_path, *args, "--redis-port", str(redis_port)) as stack:
        await stack.wait_until_up()
        assert f"redis://127.0.0.1:{redis_port}/0" in stack.banner
        assert server_pid(redis_port) is not None
        stack.proc.terminate()  # devstack alone, as a supervisor would
        assert await stack.exit_code() == 0, stack.log()
    assert stack.nothing_left_running()
    assert all(refuses(port) for port in (redis_port, emulator_port, auth_port))


async def test_a_given_gcal_redis_url_is_used_and_left_running(
    tmp_path: Path, redis: Redis, redis_url: str, redis_prefix: str
) -> None:
    emulator_port, auth_port = free_ports(2)
    args = ("--emulator-port", str(emulator_port), "--auth-port", str(auth_port))
    given = {"GCAL_REDIS_URL": redis_url, "GCAL_REDIS_PREFIX": redis_prefix}
    async with devstack(tmp_path, *args, **given) as stack:
        await stack.wait_until_up()
        assert f"  redis      {redis_url}   (GCAL_REDIS_URL)" in stack.banner
        assert f"queue {redis_prefix}:queue" in stack.banner
        async with asyncio.timeout(20):  # the worker reports health on the given Redis
            # Written by another process; there is no event to await.
            pattern = RedisKeys(redis_prefix).worker_health_pattern("*")
            while not [key async for key in redis.scan_iter(match=pattern)]:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        stack.proc.terminate()
        assert await stack.exit_code() == 0, stack.log()
    assert stack.nothing_left_running()
    assert await redis.ping()


async def test_a_given_gcal_redis_url_that_does_not_answer_is_an_error(tmp_path: Path) -> None:
    emulator_port, auth_port, nothing_there = free_ports(3)
    args = ("--emulator-port", str(emulator_port), "--auth-port", str(auth_port))
    url = f"redis://127.0.0.1:{nothing_there}/0"
    async with devstack(tmp_path, *args, GCAL_REDIS_URL=url) as stack:
        assert await stack.exit_code() != 0
    assert f"GCAL_REDIS_URL={url} does not answer" in stack.log()
    assert UP not in stack.banner
    assert refuses(emulator_port)


async def test_a_taken_port_is_an_error_naming_it_and_nothing_starts(tmp_path: Path) -> None:
    emulator_port = free_ports(1)[0]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        auth_port = taken.getsockname()[1]
        args = ("--emulator-port", str(emulator_port), "--auth-port", str(auth_port))
        async with devstack(tmp_path, *args) as stack:
            code = await stack.exit_code()
    assert code != 0
    assert f"port {auth_port} on 127.0.0.1 (--auth-port) is already in use" in stack.log()
    assert UP not in stack.banner
    assert stack.nothing_left_running()
    assert refuses(emulator_port)
