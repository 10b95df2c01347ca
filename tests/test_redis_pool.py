"""The worker's Redis pool (``worker.redis_pool``): commands packed by hiredis, the same bytes
redis-py would send and the same refusals; connections handed out without redis-py's
pool-wide lock, still checked, against a real server."""

from __future__ import annotations

import asyncio
import select
from collections.abc import AsyncIterator

import pytest
import uvloop
from redis._parsers.hiredis import _AsyncHiredisParser
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from tests.harness import Emulator
from tests.pipeline import Pipeline, pipeline, wait_until_async
from worker.redis_pool import PackedConnection, UnlockedConnectionPool, tune_pool

COMMANDS = [
    (b"SET", "k\u00e9y", "v\u00e4lue"),
    ("SET", b"\x00\xff", b""),
    ("ZADD", "q", 1764547200000, "id", -0.5, "other", float("-inf"), "x"),
    ("INCRBYFLOAT", "k", 1e300),
    ("SET", "big", 2**70),
    ("SET", "view", memoryview(b"x" * 10_000)),  # over redis-py's chunking cutoff
    ("SET", "result", b"\xc3\xa9" * 100_000),
    ("SET", "text", "\u00e9" * 100_000),
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT SETNAME", b"n"),
]


def packed_by(connection: Connection, *args: object) -> bytes:
    return b"".join(bytes(chunk) for chunk in connection.pack_command(*args))  # type: ignore[arg-type]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: str(args[0]))
def test_hiredis_packs_the_bytes_redis_py_packs(args: tuple[object, ...]) -> None:
    python, c = Connection(encoding="utf8"), PackedConnection(encoding="utf8")
    assert packed_by(c, *args) == packed_by(python, *args)


def test_a_large_value_is_sent_without_a_copy() -> None:
    value = b"[" + b"{}," * 50_000 + b"{}]"  # a result holding a page of events
    chunks = PackedConnection(encoding="utf8").pack_command("SET", "result", value, "PX", 1000)
    assert any(chunk is value for chunk in chunks)


@pytest.mark.parametrize("value", [True, None, bytearray(b"x"), object()], ids=repr)
def test_what_redis_py_refuses_is_refused_alike(value: object) -> None:
    with pytest.raises(DataError):
        packed_by(Connection(encoding="utf8"), "SET", "k", value)
    with pytest.raises(DataError):
        packed_by(PackedConnection(encoding="utf8"), "SET", "k", value)


async def test_a_tuned_pool_talks_to_redis(redis_url: str) -> None:
    client = Redis.from_url(redis_url, max_connections=50, client_name="tuned")
    try:
        await client.ping()  # a connection of the old pool, dropped by the switch
        await tune_pool(client)
        pool = client.connection_pool
        assert isinstance(pool, UnlockedConnectionPool)
        assert pool.max_connections == 50
        async with client.pipeline(transaction=True) as tr:
            tr.set("pool:k", "v\u00e4lue").get("pool:k").delete("pool:k")
            assert await tr.execute() == [True, "v\u00e4lue".encode(), 1]
        assert await client.client_getname() == "tuned"  # the old pool's settings
        connection = await pool.get_connection()
        assert isinstance(connection, PackedConnection)
        await pool.release(connection)
    finally:
        await client.aclose()


async def test_many_tasks_share_the_unlocked_pool(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    await tune_pool(client)
    try:

        async def task(n: int) -> list[object]:
            async with client.pipeline(transaction=True) as tr:
                tr.set(f"pool:{n}", n).incr(f"pool:{n}").get(f"pool:{n}").delete(f"pool:{n}")
                result: list[object] = await tr.execute()
                return result

        results = await asyncio.gather(*(task(n) for n in range(200)))
        assert results == [[True, n + 1, str(n + 1).encode(), 1] for n in range(200)]
        # Every connection went back, and a command left unread is not handed out again.
        pool = client.connection_pool
        assert not pool._in_use_connections
        blocked = asyncio.create_task(client.blpop(["pool:never"], timeout=5))

        async def waiting() -> bool:
            return bool((await client.info("clients"))["blocked_clients"])

        await wait_until_async(waiting)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        await client.rpush("pool:never", "late")
        assert await client.lpop("pool:never") == b"late"  # not eaten by the cancelled BLPOP
    finally:
        await client.aclose()


async def _readable(connection: PackedConnection) -> None:
    """Until the connection's socket, or its stream, holds the reply to a command sent."""

    def arrived() -> bool:
        assert connection._reader is not None
        assert connection._writer is not None
        if getattr(connection._reader, "_buffer", b""):
            return True
        poller = select.poll()
        poller.register(connection._writer.get_extra_info("socket").fileno(), select.POLLIN)
        return bool(poller.poll(0))

    async with asyncio.timeout(10):
        while not arrived():  # noqa: ASYNC110 - the loop reads the socket meanwhile
            await asyncio.sleep(0)


async def _unread_and_closed_connections_are_not_handed_out(redis_url: str) -> list[str]:
    """A tuned pool hands out a clean connection, and neither one holding a reply nobody
    read (the reply still in the socket, where redis-py's own check misses it) nor one the
    server closed; returns the cases that took redis-py's own check (a read that waits a
    loop iteration)."""
    client, other = Redis.from_url(redis_url), Redis.from_url(redis_url)
    await tune_pool(client)
    await tune_pool(other)
    pool = client.connection_pool
    assert isinstance(pool, UnlockedConnectionPool)
    checked: list[str] = []
    slow = _AsyncHiredisParser.can_read_destructive
    case = ""

    async def watched(parser: _AsyncHiredisParser) -> bool:
        checked.append(case)
        found: bool = await slow(parser)  # type: ignore[no-untyped-call]
        return found

    _AsyncHiredisParser.can_read_destructive = watched  # type: ignore[method-assign]
    try:
        await client.set("pool:k", "v")
        case = "clean"
        assert await client.get("pool:k") == b"v"

        case = "unread"
        connection = await pool.get_connection()
        assert isinstance(connection, PackedConnection)
        await connection.send_command("ECHO", "left over")
        await _readable(connection)
        await pool.release(connection)
        # The reply left over is not taken for this command's.
        assert await client.get("pool:k") == b"v"

        case = "closed"
        connection = await pool.get_connection()
        assert isinstance(connection, PackedConnection)
        await connection.send_command("CLIENT ID")
        client_id = await connection.read_response()
        await pool.release(connection)
        await other.execute_command("CLIENT KILL ID", client_id)
        await _readable(connection)  # the server's close
        assert await client.get("pool:k") == b"v"
        await client.delete("pool:k")
    finally:
        _AsyncHiredisParser.can_read_destructive = slow  # type: ignore[method-assign]
        await client.aclose()
        await other.aclose()
    return checked


async def test_a_connection_with_something_left_to_read_is_not_handed_out(
    redis_url: str,
) -> None:
    # Each is looked at without waiting: redis-py's reading check is never needed.
    assert await _unread_and_closed_connections_are_not_handed_out(redis_url) == []


def test_the_same_on_uvloop_the_workers_loop(redis_url: str) -> None:
    assert uvloop.run(_unread_and_closed_connections_are_not_handed_out(redis_url)) == []


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix) as p:
        await p.link("u1")
        yield p


async def test_the_worker_runs_on_the_tuned_pool(pipe: Pipeline) -> None:
    worker = await pipe.start_worker()
    assert (await pipe.run("list_calendars", {"user_id": "u1"})).ok
    assert isinstance(worker.pool.connection_pool, UnlockedConnectionPool)
    assert worker.pool.connection_pool.connection_class is PackedConnection
