"""The worker's Redis connection pool: cheaper and safer in three ways redis-py 5.3 leaves open.

arq builds the worker's pool with no way to name a pool or connection class, so
:func:`tune_pool` replaces the pool it made, before the worker uses it, with one that differs
in three ways; what goes over the wire is the same.

**Commands packed by hiredis (C), not in Python.** redis-py 5's sync client packs commands
with hiredis when it is installed (``redis.connection.HiredisRespSerializer``); its asyncio
client always packs them in Python: ``pack_command``, ``pack_commands`` and
``Encoder.encode`` were about 8% of a 10-event ``get_events`` job's CPU
(``bench/profiles/``). The pool's connections are of a subclass whose ``pack_command`` is
the sync client's. What redis-py would refuse (``None``, ``bool``, other types) is refused
as redis-py's own hiredis packer refuses it, with ``DataError``; a string that is not
UTF-8-encodable raises ``UnicodeEncodeError`` either way. A command holding a large value
(over redis-py's 6,000-byte cut-off: a result with a page of events) is packed by redis-py's
own packer instead, which sends the value as it is beside its header; hiredis would copy it
into one buffer, and a fresh buffer of 150 KB costs more than packing the rest in Python.

**No pool-wide lock around taking a connection.** Since 5.3.0 (for re-authenticating pooled
connections with a streaming credential provider, redis/redis-py#3445) the asyncio pool
holds one ``asyncio.Lock`` while it checks the connection it hands out, and the check waits
a loop iteration (a read with a zero timeout). With 80 jobs at once every command and
transaction queued on that lock (redis/redis-py#3692, open): 80 tasks each running a
transaction and a GET cost 128 us of CPU per pair with the lock, 85 without. The pool here
hands out connections as 5.2 did, unlocked, checked as below. The worker uses no
credential provider, the one thing the lock serializes against.

**The check before a connection is handed out looks rather than reads.** redis-py checks every
connection it hands out for something left to read (a reply nobody read, the server's close)
with a read under a zero timeout. That read loses its race with the timeout when the bytes are
still in the socket, not yet read by the loop: the connection is handed out with an old reply
waiting, and the next command gets it (redis-py 5.3; a test here shows it). A plain TCP or Unix
connection here is looked at instead, without waiting: anything in the stream's buffer or in
hiredis' reader, the end of the stream, or a zero-timeout ``poll`` of its socket reporting it
readable (data, a close or an error) means something is left, and redis-py reconnects it, as it
does when its own read finds something. A connection it cannot look into (TLS, whose socket
bytes are not replies; another parser) takes redis-py's check. The look costs about 2 us
against redis-py's 12 (a microbenchmark, one connection); in the benchmark no change in CPU per
job was measurable.
"""

from __future__ import annotations

import select

import hiredis
from arq.connections import ArqRedis, create_pool
from arq.worker import Worker
from redis.asyncio import Redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    ConnectionPool,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import DataError
from redis.typing import EncodableT

# redis-py's own cut-off (AbstractConnection._buffer_cutoff): a value longer than this is
# written to the socket as its own buffer rather than copied into the command's.
_COPY_CUTOFF = 6000


class _HiredisPacking(AbstractConnection):
    def pack_command(self, *args: EncodableT) -> list[bytes]:
        # A tuple, not ``bytes | memoryview``: this runs on every command (0.95 against 1.2 us
        # for a nine-word one).
        if any(isinstance(arg, (bytes, memoryview)) and len(arg) > _COPY_CUTOFF for arg in args):
            # A large value (a result holding a page of events) is sent as it is, beside its
            # header: redis-py's own packer does not copy it, hiredis would.
            return super().pack_command(*args)
        # As redis-py: a command name with spaces ("CONFIG GET") is sent as separate words.
        if isinstance(args[0], str):
            args = (*args[0].encode().split(), *args[1:])
        elif isinstance(args[0], bytes) and b" " in args[0]:
            args = (*args[0].split(), *args[1:])
        try:
            # hiredis' stub types a one-item tuple; it takes any number (str, int, float,
            # bytes, memoryview).
            return [hiredis.pack_command(args)]  # type: ignore[arg-type]
        except TypeError as err:
            raise DataError(str(err)) from err


class _QuickReadyCheck(AbstractConnection):
    async def can_read_destructive(self) -> bool:
        left = self._something_left()
        if left is None:
            found: bool = await super().can_read_destructive()  # type: ignore[no-untyped-call]
            return found
        return left

    def _something_left(self) -> bool | None:
        """Whether anything waits to be read on this idle connection; None when that cannot
        be seen without redis-py's read (not connected, or not redis-py's hiredis parser)."""
        stream, writer, parser = self._reader, self._writer, self._parser
        replies = getattr(parser, "_reader", None)  # redis-py's hiredis parser's hiredis.Reader
        # What the loop has read from the socket and no one has consumed (asyncio's
        # StreamReader keeps it there).
        buffered = getattr(stream, "_buffer", None)
        if (
            stream is None
            or writer is None
            or buffered is None
            or not isinstance(replies, hiredis.Reader)
            or not getattr(parser, "_connected", False)
        ):
            return None
        if replies.has_data() or buffered or stream.at_eof() or stream.exception() is not None:
            return True
        sock = writer.get_extra_info("socket")
        if sock is None:
            return None
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN)  # POLLHUP and POLLERR are always reported
        return bool(poller.poll(0))


class PackedConnection(_HiredisPacking, _QuickReadyCheck, Connection):
    pass


class PackedSSLConnection(_HiredisPacking, SSLConnection):
    pass


class PackedUnixDomainSocketConnection(
    _HiredisPacking, _QuickReadyCheck, UnixDomainSocketConnection
):
    pass


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: PackedConnection,
    SSLConnection: PackedSSLConnection,
    UnixDomainSocketConnection: PackedUnixDomainSocketConnection,
}


class UnlockedConnectionPool(ConnectionPool):
    """redis-py's pool, handing out connections without its pool-wide lock (redis-py 5.2's
    ``get_connection``): each connection is still connected and checked for unread data."""

    async def get_connection(
        self, command_name: object = None, *keys: object, **options: object
    ) -> AbstractConnection:
        # redis-py leaves this one untyped.
        connection: AbstractConnection = self.get_available_connection()  # type: ignore[no-untyped-call]
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection


async def tune_pool(redis: Redis) -> None:
    """Give ``redis`` a pool of :class:`UnlockedConnectionPool` with hiredis-packing
    connections, made with its pool's settings; the old pool is disconnected. A pool of
    another kind (Sentinel's, a blocking one) or a connection class this module does not
    know is left as it is."""
    old = redis.connection_pool
    packed = _PACKED.get(old.connection_class)
    if type(old) is not ConnectionPool or packed is None:
        return
    redis.connection_pool = UnlockedConnectionPool(
        connection_class=packed, max_connections=old.max_connections, **old.connection_kwargs
    )
    await old.disconnect()


async def tuned_arq_pool(worker: Worker) -> ArqRedis:
    """arq's pool for ``worker``, made as arq 0.28's ``Worker.main`` makes it, then tuned."""
    pool = await create_pool(
        worker.redis_settings,
        job_deserializer=worker.job_deserializer,
        job_serializer=worker.job_serializer,
        default_queue_name=worker.queue_name,
        expires_extra_ms=worker.expires_extra_ms,
    )
    await tune_pool(pool)
    return pool
