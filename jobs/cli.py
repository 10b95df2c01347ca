"""``python -m jobs``: the command line for services and developers, against any deployment
(``./dev run`` or production) through its Redis and, for ``link-url``, its auth_web.

    python -m jobs get-events USER [--from T] [--to T] [--calendar ID] [--max N] [--basic]
    python -m jobs create-event USER --summary S --start T --end T [--calendar ID] ...
    python -m jobs list-calendars USER
    python -m jobs run JOB '{"user_id": "u1", ...}'     any job; '-' reads the JSON from stdin
    python -m jobs result JOB_ID                          a job's result (waits for it)
    python -m jobs link-url USER [--return-to URL] [--login-hint EMAIL] [--scope S] [--auth-url U]
    python -m jobs watch [--from-start] [--count N] [--type TYPE]
    python -m jobs write-contract                         regenerate docs/schemas and the contract

Job commands enqueue through :class:`jobs.client.JobClient` and print the result envelope
(JSON) on stdout; ``--no-wait`` prints the job id instead. ``watch`` prints each notification
of the durable stream as one JSON line, following it until Ctrl-C (or ``--count``).

Settings: ``GCAL_REDIS_URL`` and ``GCAL_REDIS_PREFIX`` (nothing else) for every command but
``link-url``, which reads ``GCAL_API_KEYS`` (the first key is presented) and
``GCAL_REDIRECT_URI`` (auth_web's address is its origin, unless ``--auth-url``).

Exit status: 0 done (a job's result ``ok``), 1 the job's result is an error, 2 bad usage or
configuration, 3 no result within ``--timeout``, 4 auth_web or Redis refused or unreachable,
130 interrupted (Ctrl-C; for ``watch``, how it ends: 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gcal import logs
from gcal.environment import REDIS, settings_or_exit
from gcal.keys import RedisKeys
from gcal.settings import Settings
from jobs import contract_doc, schemas
from jobs.client import JobClient
from jobs.registry import JOBS

PROG = "python -m jobs"
OK, JOB_FAILED, USAGE, NO_RESULT, UNREACHABLE = 0, 1, 2, 3, 4
INTERRUPTED = 130
# How long one XREAD waits before asking again (so Ctrl-C is never held up long), ms.
_WATCH_BLOCK_MS = 1000


def _parser() -> argparse.ArgumentParser:
    doc = (__doc__ or "").replace("``", "")
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run gcal-jobs jobs, get consent URLs and follow notifications, against "
        "any deployment.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(doc.split("\n")[12:]).replace(
            ":class:`jobs.client.JobClient`", "the Python producer client"
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def job_command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--timeout", type=float, default=60.0, help="seconds to wait for the result (60)"
        )
        sub.add_argument("--no-wait", action="store_true", help="print the job id, do not wait")
        sub.add_argument("--job-id", help="the job id (default: a new random one)")
        return sub

    sub = job_command("get-events", "Events of one calendar in a time window.")
    sub.add_argument("user", help="the user id")
    sub.add_argument("--from", dest="time_min", metavar="T", help="RFC 3339 start of the window")
    sub.add_argument("--to", dest="time_max", metavar="T", help="RFC 3339 end of the window")
    sub.add_argument("--calendar", default="primary", help="calendar id (primary)")
    sub.add_argument("--max", type=int, dest="max_events", help="stop after N events")
    sub.add_argument("--query", dest="q", help="free-text search")
    sub.add_argument("--basic", action="store_true", help="only the common fields of each event")

    sub = job_command("create-event", "Create an event (once per idempotency key).")
    sub.add_argument("user", help="the user id")
    sub.add_argument("--summary", help="the event's title")
    sub.add_argument("--start", help="RFC 3339 date-time, or YYYY-MM-DD for all-day")
    sub.add_argument("--end", help="RFC 3339 date-time, or YYYY-MM-DD (exclusive)")
    sub.add_argument("--description")
    sub.add_argument("--location")
    sub.add_argument("--attendee", action="append", default=[], help="email (repeatable)")
    sub.add_argument("--calendar", default="primary", help="calendar id (primary)")
    sub.add_argument("--idempotency-key", help="same key, same event (default: the job id)")
    sub.add_argument("--event", help="the whole event as JSON (instead of the options above)")

    sub = job_command("list-calendars", "The user's calendar list.")
    sub.add_argument("user", help="the user id")

    sub = job_command("run", "Any job, with its arguments as a JSON object.")
    sub.add_argument("job", choices=sorted(JOBS), metavar="JOB", help=", ".join(sorted(JOBS)))
    sub.add_argument("arguments", help="JSON object of the job's arguments; - reads stdin")

    sub = commands.add_parser("result", help="A job's result, waiting for it.")
    sub.add_argument("job_id")
    sub.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (60)")

    sub = commands.add_parser("link-url", help="A consent URL for a user, from auth_web.")
    sub.add_argument("user", help="the user id")
    sub.add_argument("--return-to", help="where the browser goes after linking (allowlisted)")
    sub.add_argument("--login-hint", help="the Google account to suggest")
    sub.add_argument(
        "--scope",
        action="append",
        default=[],
        help="a scope to ask for besides the configured ones (repeatable), e.g. one a "
        "scope_missing result named",
    )
    sub.add_argument(
        "--auth-url", help="auth_web's base URL (default: the origin of GCAL_REDIRECT_URI)"
    )

    sub = commands.add_parser("watch", help="Follow notifications, one JSON line each.")
    sub.add_argument("--from-start", action="store_true", help="the whole stream first")
    sub.add_argument("--count", type=int, help="stop after N notifications")
    sub.add_argument("--type", action="append", default=[], help="only this type (repeatable)")

    commands.add_parser("write-contract", help="Regenerate docs/schemas and docs/contract.md.")
    return parser


def _event_time(value: str) -> dict[str, str]:
    return {"date": value} if len(value) == 10 else {"dateTime": value}


def _arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The job's arguments as JSON, from the command's options (unset ones left out)."""
    if args.command == "run":
        text = sys.stdin.read() if args.arguments == "-" else args.arguments
        return _json_object(text, "the arguments")
    named: dict[str, Any] = {"user_id": args.user}
    if args.command == "get-events":
        for name in ("time_min", "time_max", "max_events", "q"):
            if getattr(args, name) is not None:
                named[name] = getattr(args, name)
        named["calendar_id"] = args.calendar
        if args.basic:
            named["projection"] = "basic"
    elif args.command == "create-event":
        named["calendar_id"] = args.calendar
        named["event"] = _event(args)
        if args.idempotency_key:
            named["idempotency_key"] = args.idempotency_key
    return named


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        raise SystemExit(f"{PROG}: {what} is not JSON ({err})") from None
    if not isinstance(value, dict):
        raise SystemExit(f"{PROG}: {what} must be a JSON object")
    return value


def _event(args: argparse.Namespace) -> dict[str, Any]:
    if args.event is not None:
        return _json_object(args.event, "--event")
    if not args.start or not args.end:
        raise SystemExit(f"{PROG}: create-event needs --start and --end (or --event)")
    event: dict[str, Any] = {"start": _event_time(args.start), "end": _event_time(args.end)}
    for name in ("summary", "description", "location"):
        if getattr(args, name) is not None:
            event[name] = getattr(args, name)
    if args.attendee:
        event["attendees"] = [{"email": email} for email in args.attendee]
    return event


_JOB_OF = {
    "get-events": "get_events",
    "create-event": "create_event",
    "list-calendars": "list_calendars",
}


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False), flush=True)  # noqa: T201


async def _run_job(settings: Settings, args: argparse.Namespace) -> int:
    job = args.job if args.command == "run" else _JOB_OF[args.command]
    named = _arguments(args)
    redis = Redis.from_url(str(settings.redis_url))
    try:
        async with JobClient(redis, RedisKeys(settings.redis_prefix)) as client:
            job_id = await client.enqueue(job, named, job_id=args.job_id)
            if args.no_wait:
                print(job_id, flush=True)  # noqa: T201
                return OK
            return await _await_result(client, job_id, args.timeout)
    finally:
        await redis.aclose()


async def _await_result(client: JobClient, job_id: str, within: float) -> int:
    try:
        result = await client.result(job_id, timeout=within)
    except TimeoutError:
        print(  # noqa: T201
            f"{PROG}: no result for job {job_id} within {within:g}s "
            f"(`{PROG} result {job_id}` waits again)",
            file=sys.stderr,
        )
        return NO_RESULT
    _print_json(result.model_dump(mode="json", exclude_none=True))
    return OK if result.ok else JOB_FAILED


async def _result(settings: Settings, args: argparse.Namespace) -> int:
    redis = Redis.from_url(str(settings.redis_url))
    try:
        async with JobClient(redis, RedisKeys(settings.redis_prefix)) as client:
            return await _await_result(client, args.job_id, args.timeout)
    finally:
        await redis.aclose()


async def _link_url(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.api_keys:
        print(f"{PROG}: bad configuration: GCAL_API_KEYS is not set", file=sys.stderr)  # noqa: T201
        return USAGE
    if args.auth_url:
        base = args.auth_url.rstrip("/")
    else:
        origin = urlsplit(str(settings.redirect_uri))
        base = f"{origin.scheme}://{origin.netloc}"
    params = [
        (name, value)
        for name, value in (("return_to", args.return_to), ("login_hint", args.login_hint))
        if value is not None
    ]
    params.extend(("scope", scope) for scope in args.scope)
    key = settings.api_keys[0].get_secret_value()
    url = f"{base}/auth/url/{quote(args.user, safe='')}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
            http.get(url, params=params, headers={"Authorization": f"Bearer {key}"}) as resp,
        ):
            body = await resp.text()
            status = resp.status
    except (aiohttp.ClientError, OSError, TimeoutError) as err:
        print(f"{PROG}: auth_web at {base} is unreachable ({type(err).__name__})", file=sys.stderr)  # noqa: T201
        return UNREACHABLE
    if status != 200:
        print(f"{PROG}: auth_web answered {status}: {body.strip()[:500]}", file=sys.stderr)  # noqa: T201
        return UNREACHABLE if status >= 500 or status == 401 else USAGE
    print(body.strip(), flush=True)  # noqa: T201
    return OK


async def _watch(settings: Settings, args: argparse.Namespace) -> int:
    stream = RedisKeys(settings.redis_prefix).notification_stream
    wanted = set(args.type)
    shown = 0
    redis = Redis.from_url(str(settings.redis_url))
    try:
        after = "0-0"
        if not args.from_start:
            last = await redis.xrevrange(stream, count=1)
            after = last[0][0].decode() if last else "0-0"
        print(f"{PROG}: watching {stream} (Ctrl-C stops)", file=sys.stderr, flush=True)  # noqa: T201
        while args.count is None or shown < args.count:
            answer = await redis.xread({stream: after}, block=_WATCH_BLOCK_MS, count=100)
            for _, entries in answer:
                for entry_id, fields in entries:
                    after = entry_id.decode()
                    if wanted and fields.get(b"type", b"").decode() not in wanted:
                        continue
                    print(fields[b"json"].decode(), flush=True)  # noqa: T201
                    shown += 1
                    if args.count is not None and shown >= args.count:
                        return OK
    finally:
        await redis.aclose()
    return OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "write-contract":
        for path in [*schemas.write(), contract_doc.write()]:
            print(path)  # noqa: T201
        return OK
    only = ("redirect_uri", "api_keys") if args.command == "link-url" else REDIS
    settings = settings_or_exit(PROG, only=only)
    logs.configure(settings.log_format, settings.log_level)
    if args.command == "link-url":
        command = _link_url
    elif args.command == "watch":
        command = _watch
    elif args.command == "result":
        command = _result
    else:
        command = _run_job
    try:
        return asyncio.run(command(settings, args))
    except KeyboardInterrupt:
        # Ctrl-C is how watch ends; anything else was cut short (the shell's 128 + SIGINT).
        return OK if args.command == "watch" else INTERRUPTED
    except (RedisError, OSError) as err:
        print(f"{PROG}: Redis is unreachable ({type(err).__name__})", file=sys.stderr)  # noqa: T201
        return UNREACHABLE
