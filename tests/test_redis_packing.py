"""The worker's Redis commands, packed by hiredis (``worker.redis_packing``): the same bytes
redis-py would send, the same refusals, against a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from tests.harness import Emulator
from tests.pipeline import Pipeline, pipeline
from worker.redis_packing import PackedConnection, pack_with_hiredis

COMMANDS = [
    (b"SET", "k\u00e9y", "v\u00e4lue"),
    ("SET", b"\x00\xff", b""),
    ("ZADD", "q", 1764547200000, "id", -0.5, "other", float("-inf"), "x"),
    ("INCRBYFLOAT", "k", 1e300),
    ("SET", "big", 2**70),
    ("SET", "view", memoryview(b"x" * 10_000)),  # over redis-py's chunking cutoff
    ("CONFIG GET", "maxmemory"),
    (b"CLIENT SETNAME", b"n"),
]


def packed_by(connection: Connection, *args: object) -> bytes:
    return b"".join(bytes(chunk) for chunk in connection.pack_command(*args))  # type: ignore[arg-type]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: str(args[0]))
def test_hiredis_packs_the_bytes_redis_py_packs(args: tuple[object, ...]) -> None:
    python, c = Connection(encoding="utf8"), PackedConnection(encoding="utf8")
    assert packed_by(c, *args) == packed_by(python, *args)


@pytest.mark.parametrize("value", [True, None, bytearray(b"x"), object()], ids=repr)
def test_what_redis_py_refuses_is_refused_alike(value: object) -> None:
    with pytest.raises(DataError):
        packed_by(Connection(encoding="utf8"), "SET", "k", value)
    with pytest.raises(DataError):
        packed_by(PackedConnection(encoding="utf8"), "SET", "k", value)


async def test_a_packed_pool_talks_to_redis(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        await client.ping()  # a connection packing in Python, dropped by the switch
        await pack_with_hiredis(client)
        async with client.pipeline(transaction=True) as tr:
            tr.set("packing:k", "v\u00e4lue").get("packing:k").delete("packing:k")
            assert await tr.execute() == [True, "v\u00e4lue".encode(), 1]
        connection = await client.connection_pool.get_connection()
        assert isinstance(connection, PackedConnection)
        await client.connection_pool.release(connection)
    finally:
        await client.aclose()


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix) as p:
        await p.link("u1")
        yield p


async def test_the_worker_packs_with_hiredis(pipe: Pipeline) -> None:
    worker = await pipe.start_worker()
    assert (await pipe.run("list_calendars", {"user_id": "u1"})).ok
    assert worker.pool.connection_pool.connection_class is PackedConnection
