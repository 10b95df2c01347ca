"""``python -m emulator``: serve the Google OAuth + Calendar v3 emulator.

    python -m emulator --host 127.0.0.1 --port 8765 [--auto-approve]
        [--client-id ID --client-secret SECRET --redirect-uri URI ...] [--config FILE]

Prints ``emulator listening on http://HOST:PORT`` once it accepts connections (``--port 0``
picks a free port), and stops cleanly on SIGINT/SIGTERM.

What survives a full garbage collection (calendars, events: the store) is frozen out of later
ones (:func:`freeze_survivors`), so the process does not stall every request for a scan of a
store that grew by a benchmark's hundred thousand created events: Google has no such pauses,
and a benchmark would charge them to the worker's latency. For the same reason it runs on
uvloop, as the worker does: in a benchmark it shares a core with Redis and the load driver.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import signal
import sys
from pathlib import Path

import uvloop
from aiohttp import web

from emulator.app import create_app
from emulator.config import ClientConfig, EmulatorConfig, QuotaConfig
from emulator.keys import STORE


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--config", type=Path, help="JSON file: clients, quotas, behaviour")
    parser.add_argument("--client-id", help="register an OAuth client (instead of the demo one)")
    parser.add_argument("--client-secret")
    parser.add_argument("--redirect-uri", action="append", default=[], help="repeatable")
    parser.add_argument(
        "--auto-approve", action="store_true", help="approve consent at once as login_hint"
    )
    parser.add_argument("--quota-user-per-minute", type=int, default=None)
    parser.add_argument("--quota-project-per-minute", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    public_url = f"http://{args.host}:{args.port}"
    config = EmulatorConfig.from_file(args.config) if args.config else EmulatorConfig()
    changes: dict[str, object] = {"public_url": public_url}
    if args.auto_approve:
        changes["auto_approve"] = True
    if args.client_id:
        if not args.client_secret or not args.redirect_uri:
            raise SystemExit("--client-id needs --client-secret and at least one --redirect-uri")
        changes["clients"] = (
            ClientConfig(args.client_id, args.client_secret, tuple(args.redirect_uri)),
        )
    if args.quota_user_per_minute is not None or args.quota_project_per_minute is not None:
        changes["quotas"] = QuotaConfig(
            per_user_per_minute=args.quota_user_per_minute or 0,
            per_project_per_minute=args.quota_project_per_minute or 0,
        )
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


async def serve(config: EmulatorConfig, host: str, port: int) -> None:
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    if bound != port:
        # --port 0: tell the app where it really is, for URLs it hands out.
        app[STORE].config = dataclasses.replace(config, public_url=f"http://{host}:{bound}")
    print(f"emulator listening on http://{host}:{bound}", flush=True)  # noqa: T201
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """A ``gc.callbacks`` hook: once a full collection ends, what it kept is long-lived (the
    store, mostly); move it to the permanent generation, which no collection scans. A full
    collection then costs what was allocated since the last one, not the whole store."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    gc.callbacks.append(freeze_survivors)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(build_config(args), args.host, args.port))


if __name__ == "__main__":
    main()
