"""Redis commands packed by hiredis (C) on the worker's connections, instead of in Python.

redis-py 5's sync client packs commands with hiredis when it is installed
(``redis.connection.HiredisRespSerializer``); its asyncio client always packs them in Python:
``pack_command``, ``pack_commands`` and ``Encoder.encode`` were about 8% of a 10-event
``get_events`` job's CPU (``bench/profiles/``). arq builds the worker's pool with no way to name
a connection class, so :func:`pack_with_hiredis` swaps the class of the pool's connections for
a subclass whose ``pack_command`` is the sync client's, before the worker uses the pool.

The bytes on the wire are the same. What redis-py would refuse (``None``, ``bool``, other
types) is refused as redis-py's own hiredis packer refuses it, with ``DataError``; a string
that is not UTF-8-encodable raises ``UnicodeEncodeError`` either way.
"""

from __future__ import annotations

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import DataError
from redis.typing import EncodableT


class _HiredisPacking(AbstractConnection):
    def pack_command(self, *args: EncodableT) -> list[bytes]:
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


class PackedConnection(_HiredisPacking, Connection):
    pass


class PackedSSLConnection(_HiredisPacking, SSLConnection):
    pass


class PackedUnixDomainSocketConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: PackedConnection,
    SSLConnection: PackedSSLConnection,
    UnixDomainSocketConnection: PackedUnixDomainSocketConnection,
}


async def pack_with_hiredis(redis: Redis) -> None:
    """Make the connections of ``redis``'s pool pack with hiredis (the connections it already
    has are closed and dropped). A class it does not know (Sentinel's) is left as it is."""
    pool = redis.connection_pool
    packed = _PACKED.get(pool.connection_class)
    if packed is None:
        return
    pool.connection_class = packed
    await pool.disconnect()
    pool.reset()  # type: ignore[no-untyped-call]
