"""JSON on the wire: how jobs, results and notifications are encoded (never pickle), and the
check every job payload passes before arq touches it.

arq's job payload is JSON (``{"t": try, "f": job name, "a": [], "k": {arguments}, "et":
enqueue time ms}``), so any language can enqueue; see ``docs/contract.md``. :func:`loads_job`
is the worker's deserializer: a payload that is not a well-formed job raises there, so arq
records the job as failed before any job function runs, and the worker writes a typed
``invalid_request`` result for it. A payload that passes cannot upset arq: ``t`` and ``et`` are
numbers arq can do arithmetic and dates with, ``f`` is a plain job name, and the arguments
travel through arq as one opaque :class:`Arguments` value, never bound to parameter names
(an argument called ``ctx`` cannot collide with arq's context) and never printed by arq's
log lines nor kept in arq's own result record.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import orjson

# Larger payloads are refused unread (a whole event with 100 attendees is a few KB).
MAX_PAYLOAD_BYTES = 1_000_000
JOB_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")
# arq turns ``et`` into a datetime: keep it within what datetime can hold (1970..9999).
MAX_ENQUEUE_MS = 253_402_300_799_000
# arq compares ``t`` with its own try counter. The worker passes its own, lower, limit: a job
# whose ``t`` is past the worker's tries would never run (arq reports its tries used up).
MAX_TRY = 1_000_000
# The one keyword arq passes a job function: the producer's arguments, whole.
ARGUMENTS = "arguments"


class Arguments:
    """A job's arguments as the producer sent them (arq's ``a`` and ``k``)."""

    __slots__ = ("named", "positional")

    def __init__(self, positional: list[Any], named: dict[str, Any]) -> None:
        self.positional = positional
        self.named = named

    def __repr__(self) -> str:
        # arq logs each job's arguments with repr(): they hold users' calendar data.
        return "<arguments>"


def _fallback(value: Any) -> Any:
    if isinstance(value, Arguments):
        return None  # arq's own result record keeps no copy of the arguments
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, BaseException):
        # arq stores a failed job's exception in its own result record.
        return {"error": type(value).__name__, "message": str(value)}
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return json.dumps(value, default=_fallback, separators=(",", ":")).encode()


def dumps_record(value: Any) -> bytes:
    """The worker's arq serializer (arq's own job records, jobs the worker enqueues): the
    JSON value :func:`dumps` makes (non-ASCII text as UTF-8, not escaped), by orjson (a
    tenth of the CPU). A value orjson refuses (an integer past 64 bits: a hostile queue
    score becomes arq's enqueue time) goes through :func:`dumps`."""
    try:
        return orjson.dumps(value, default=_fallback)
    except TypeError:  # orjson.JSONEncodeError is one
        return dumps(value)


def loads(data: bytes | str) -> Any:
    return json.loads(data)


def _whole_number(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def loads_job(data: bytes | str, *, max_try: int = MAX_TRY) -> dict[str, Any]:
    """arq's job deserializer: a well-formed JSON job payload, or ``ValueError``.

    ``max_try``: the highest ``t`` accepted, the worker's tries (``GCAL_JOB_MAX_TRIES``)."""
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"a job payload is at most {MAX_PAYLOAD_BYTES} bytes")
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("a job payload is a JSON object")
    name, positional, named = value.get("f"), value.get("a", []), value.get("k", {})
    job_try, enqueued = value.get("t"), value.get("et")
    if not isinstance(name, str) or not JOB_NAME_RE.fullmatch(name):
        raise ValueError("a job payload names its job in 'f'")
    if not isinstance(positional, list) or not isinstance(named, dict):
        raise ValueError("a job payload has 'a' (a list) and 'k' (an object)")
    if job_try is not None and not _whole_number(job_try, 1, min(max_try, MAX_TRY)):
        raise ValueError("a job payload's 't' is null or a try number")
    if not _whole_number(enqueued, 0, MAX_ENQUEUE_MS):
        raise ValueError("a job payload's 'et' is the enqueue time in ms since the epoch")
    return {
        "f": name,
        "a": [],
        "k": {ARGUMENTS: Arguments(positional, named)},
        "t": job_try,
        "et": enqueued,
    }
