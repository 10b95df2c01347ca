"""``python -m devstack`` (``./dev run``): the whole service on one machine, nothing to configure.

Starts, as child processes:

* the Google emulator (``python -m emulator``) on 127.0.0.1:8765, with its demo OAuth client;
* auth_web (``python -m auth_web``) on 127.0.0.1:8080, every Google URL pointed at the emulator;
* a job worker (``python -m worker``) on the same settings;

and uses the Redis at ``GCAL_REDIS_URL`` (default 127.0.0.1:6379), or, if none answers, an
embedded in-memory Redis (fakeredis) served on a free local port. Dev-mode settings only: a
fixed API key and a token key kept in ``.devstack/`` (git-ignored). Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from fakeredis import TcpFakeServer

DEV_API_KEY = "dev-api-key"
DEMO_CLIENT_ID = "demo-client.apps.googleusercontent.com"
DEMO_CLIENT_SECRET = "demo-client-secret"  # noqa: S105 - the emulator's public demo client
STATE_DIR = Path(".devstack")


def _redis_answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _embedded_redis() -> str:
    """Serve an in-memory Redis (fakeredis) from a thread; its URL."""
    server = TcpFakeServer(("127.0.0.1", 0), server_type="redis")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return f"redis://{host!s}:{port}/0"


def _token_key() -> str:
    STATE_DIR.mkdir(exist_ok=True)
    path = STATE_DIR / "token.key"
    if not path.exists():
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()


def _wait_for_port(host: str, port: int, proc: subprocess.Popen[bytes], name: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"devstack: {name} exited with {proc.returncode}")
        try:
            socket.create_connection((host, port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)  # a start-up poll in a CLI, not on an event loop
    raise SystemExit(f"devstack: {name} did not start on {host}:{port}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    parser.add_argument("--emulator-port", type=int, default=8765)
    parser.add_argument("--auth-port", type=int, default=8080)
    parser.add_argument(
        "--auto-approve", action="store_true", help="emulator approves consent as login_hint"
    )
    args = parser.parse_args()

    redis_url = os.environ.get("GCAL_REDIS_URL", "redis://127.0.0.1:6379/0")
    if _redis_answers(redis_url):
        redis_note = f"{redis_url} (found running)"
    else:
        redis_url = _embedded_redis()
        redis_note = f"{redis_url} (embedded, in memory: no Redis answered)"

    emu = f"http://127.0.0.1:{args.emulator_port}"
    auth = f"http://127.0.0.1:{args.auth_port}"
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
        "GCAL_API_KEYS": json.dumps([DEV_API_KEY]),
        "GCAL_TOKEN_KEYS": json.dumps([_token_key()]),
        "GCAL_AUTH_WEB_PORT": str(args.auth_port),
        "GCAL_SCOPES": json.dumps(
            ["https://www.googleapis.com/auth/calendar.events", "openid", "email"]
        ),
    }
    emulator_cmd = [sys.executable, "-m", "emulator", "--port", str(args.emulator_port)]
    if args.auto_approve:
        emulator_cmd.append("--auto-approve")
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        emulator = subprocess.Popen(emulator_cmd, env=env)  # noqa: S603 - our own module
        procs.append(("emulator", emulator))
        _wait_for_port("127.0.0.1", args.emulator_port, emulator, "emulator")
        auth_web = subprocess.Popen([sys.executable, "-m", "auth_web"], env=env)
        procs.append(("auth_web", auth_web))
        _wait_for_port("127.0.0.1", args.auth_port, auth_web, "auth_web")
        worker = subprocess.Popen([sys.executable, "-m", "worker"], env=env)
        procs.append(("worker", worker))
        print(  # noqa: T201
            f"""
gcal-jobs dev stack is up
  redis      {redis_note}
  emulator   {emu}   (Google OAuth + Calendar v3; control API under {emu}/_emulator/)
  auth_web   {auth}   (API key: {DEV_API_KEY})
  worker     queue gcal:queue on that Redis

Link an account:
  curl -s -H 'Authorization: Bearer {DEV_API_KEY}' {auth}/auth/url/demo-user
  then open the "url" it returns in a browser and approve.
Then run a job for that user (any language can; this uses redis-cli):
  REDIS_URL={redis_url} examples/enqueue.sh list_calendars '{{"user_id": "demo-user"}}'
Ctrl-C stops everything.
""",
            flush=True,
        )
        # Explicitly: a process started in the background inherits an ignored SIGINT.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        while all(proc.poll() is None for _, proc in procs):
            time.sleep(0.5)  # supervising children from a CLI, not an event loop
        dead = [name for name, proc in procs if proc.poll() is not None]
        raise SystemExit(f"devstack: {', '.join(dead)} stopped; stopping the rest")
    except KeyboardInterrupt:
        pass
    finally:
        for _, proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
