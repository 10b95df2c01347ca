"""Regression corpus: what producers have put, or could put, on the queue, and what must follow.

Each case is a queue member (the job id, as bytes) and what is stored at ``arq:job:<id>``
(``None``: nothing, or a Redis value of another type). ``expect`` is the result's error code,
``"ok"`` for a job that runs, or ``"dead_letter"`` for a member no result can be named for.
The first shapes are the ones that stopped a worker before (issue 8).
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import dataclass
from typing import Any

NOW_MS = int(time.time() * 1000)
GOOD_ARGS = {"user_id": "u1"}


@dataclass(frozen=True)
class Case:
    name: str
    job_id: bytes
    payload: bytes | None
    expect: str
    hash_payload: bool = False  # store the payload as a Redis hash (a wrong type for arq)
    score: float | None = None  # its score in the queue (due now by default)
    tries: bytes | None = None  # what is stored at arq:retry:<id> (arq's try count)


def job(
    f: Any = "list_calendars", k: Any = None, *, a: Any = (), t: Any = None, et: Any = NOW_MS
) -> bytes:
    return json.dumps(
        {"t": t, "f": f, "a": list(a) if isinstance(a, tuple) else a, "k": k or GOOD_ARGS, "et": et}
    ).encode()


def _deep_args(depth: int) -> bytes:
    """A job whose arguments hold a list nested ``depth`` deep."""
    nested = b"[" * depth + b"]" * depth
    return job(k={"user_id": "u1", "deep": 0}).replace(b'"deep": 0', b'"deep": ' + nested)


def _id(name: str) -> bytes:
    return f"hostile-{name}-{time.monotonic_ns()}".encode()


def corpus() -> list[Case]:
    """Fresh ids every call, so repeated runs never meet their own earlier results."""
    raw = [
        # t (arq's try counter) that arq cannot compare: TypeError in _poll_iteration.
        ("t-string", job(t="x"), "invalid_request"),
        ("t-digit-string", job(t="1"), "invalid_request"),
        ("t-list", job(t=[1]), "invalid_request"),
        # t past the worker's tries (GCAL_JOB_MAX_TRIES, 8 here): arq would never run the job
        # and report its tries used up by crashing workers, `internal` (found by the fuzz).
        ("t-beyond-tries", job(t=9), "invalid_request"),
        ("t-huge", job(t=1_000_000), "invalid_request"),
        ("t-last-try", job(t=8), "ok"),
        # et (enqueue time) that arq cannot subtract or turn into a date.
        ("et-string", job(et="x"), "invalid_request"),
        ("et-null", job(et=None), "invalid_request"),
        ("et-list", job(et=[]), "invalid_request"),
        ("et-object", job(et={}), "invalid_request"),
        ("et-huge", job(et=1e300), "invalid_request"),
        ("et-negative", job(et=-(10**18)), "invalid_request"),
        # f holding a lone surrogate: valid JSON, not encodable as UTF-8.
        ("f-lone-surrogate", job(f="get_events\ud800"), "invalid_request"),
        ("f-unknown", job(f="drop_tables"), "invalid_request"),
        ("f-number", job(f=7), "invalid_request"),
        # Arguments that collide with arq's own parameters, or that upset validation code.
        ("arg-named-ctx", job(k={"user_id": "u1", "ctx": {}}), "invalid_request"),
        ("arg-named-self", job(k={"user_id": "u1", "self": 1}), "invalid_request"),
        (
            "zone-too-long",
            job("get_events", {"user_id": "u1", "time_zone": "A" * 300}),
            "invalid_request",
        ),
        (
            "zone-path",
            job("get_events", {"user_id": "u1", "time_zone": "../../etc/passwd"}),
            "invalid_request",
        ),
        (
            "zone-nul",
            job("get_events", {"user_id": "u1", "time_zone": "Europe/\x00Zurich"}),
            "invalid_request",
        ),
        # An etag is sent as the If-Match header: a line break or other control character
        # was refused by the HTTP client mid-job, `internal` (found by the fuzz).
        (
            "etag-header-injection",
            job(
                "update_event",
                {
                    "user_id": "u1",
                    "event_id": "abc",
                    "etag": '"1"\r\nX-Injected: 1',
                    "patch": {"summary": "x"},
                },
            ),
            "invalid_request",
        ),
        (
            "etag-control-char",
            job("delete_event", {"user_id": "u1", "event_id": "abc", "etag": '"1\x00"'}),
            "invalid_request",
        ),
        ("k-list", job(k=["u1"]), "invalid_request"),
        ("a-null", job(a=None), "invalid_request"),
        ("a-positional", job(a=["u1"]), "invalid_request"),
        ("not-json", b"\x80\x04not json", "invalid_request"),
        (
            "pickle",
            pickle.dumps({"f": "list_calendars", "a": [], "k": GOOD_ARGS, "et": NOW_MS}),
            "invalid_request",
        ),
        ("json-array", b"[]", "invalid_request"),
        ("deep-json", b"[" * 100_000 + b"]" * 100_000, "invalid_request"),
        ("huge-json", job(k={"user_id": "u1", "pad": "x" * 1_100_000}), "invalid_request"),
        ("control-chars", job(k={"user_id": "u\x00\x1b1"}), "invalid_request"),
        # Shapes the fuzz (tests/test_fuzz_queue.py) sends, kept as fixed cases.
        ("et-nan", job(et=float("nan")), "invalid_request"),
        ("et-zero", job(et=0), "ok"),
        ("int-too-long", job().replace(b'"t": null', b'"t": ' + b"9" * 5000), "invalid_request"),
        ("payload-empty", b"", "invalid_request"),
        ("payload-truncated", job()[:-1], "invalid_request"),
        # Python's json reads bytes with surrogatepass: raw surrogate bytes act as the escape.
        (
            "surrogate-raw-bytes",
            job(k={"user_id": "\ud800"}).replace(b"\\ud800", b"\xed\xa0\x80"),
            "invalid_request",
        ),
        # Around the recursion limit, parsing the payload and re-encoding the arguments part
        # ways: either way the answer is invalid_request, never internal.
        ("deep-args-975", _deep_args(975), "invalid_request"),
        ("deep-args-1000", _deep_args(1000), "invalid_request"),
        ("good", job(), "ok"),
    ]
    cases = [Case(name, _id(name), payload, expect) for name, payload, expect in raw]
    cases += [
        # Job ids: not UTF-8 (no result key can be named), outside the documented rule, odd.
        Case("id-not-utf8", b"\xff\xfe-" + _id("x"), job(), "dead_letter"),
        Case("id-colon", _id("colon") + b":x", job(), "invalid_request"),
        Case("id-glob", _id("glob") + b"*", job(), "invalid_request"),
        Case("id-space", _id("space") + b" x", job(), "invalid_request"),
        Case("id-too-long", b"x" * 200 + _id("long"), job(), "invalid_request"),
        Case("id-dots", b".." + _id("dots"), job(), "ok"),
        Case("id-empty", b"", job(), "invalid_request"),
        Case("id-128", _id("128").ljust(128, b"x"), job(), "ok"),
        Case("id-129", _id("129").ljust(129, b"x"), job(), "invalid_request"),
        Case("id-surrogate-bytes", _id("cesu") + b"\xed\xa0\x80", job(), "dead_letter"),
        # The queue names a job whose payload is missing, or stored as another Redis type.
        Case("no-payload", _id("no-payload"), None, "invalid_request"),
        Case("payload-wrong-type", _id("hash"), job(), "invalid_request", hash_payload=True),
        # arq's try count for the job is not a number: its first read fails in Redis.
        Case("tries-not-a-number", _id("tries"), job(), "internal", tries=b"many"),
        # Scores arq turns into an int (its enqueue time in ms): int() of -inf raised in the
        # poll loop; a fraction, or a time long past, is still a due job.
        Case("score-minus-inf", _id("score-minus-inf"), job(), "ok", score=float("-inf")),
        Case("score-fraction", _id("score-fraction"), job(), "ok", score=NOW_MS - 0.5),
        Case("score-huge-negative", _id("score-negative"), job(), "ok", score=-1e300),
    ]
    return cases
