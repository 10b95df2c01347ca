"""Hypothesis strategies for queue entries: what any producer can put in Redis for one job (a
queue member, the job id, and whatever is stored at ``arq:job:<id>``), and what must follow.

    entry = draw(queue_entries())
    job_id = entry.job_id.render(nonce)          # unique per run: see JobIdShape
    # SET arq:job:<job_id> entry.payload; ZADD <p>:queue now <job_id>

The payloads are arq's JSON job (``docs/contract.md``, The payload) built from
:func:`tests.argument_strategies.job_arguments` and then, most of the time, broken: ``t``,
``et``, ``f``, ``a``, ``k`` of wrong types or out of range, missing or extra; huge and deeply
nested JSON; raw control characters, lone surrogates written as ``\\ud800`` escapes, raw
invalid UTF-8; arq's own pickle; other Redis types, or nothing at all. Job ids are valid or
carry ``:`` ``*`` ``..`` spaces, are empty, over-long or not UTF-8.

Each entry says which outcomes the contract allows (:class:`Expect`), as categories of result:
``dead_letter`` (no result can be named; the id is in ``<p>:dead-letters``), ``not_a_job``
(``invalid_request``, job ``<unknown>``), ``unknown_job`` (``invalid_request`` naming the
job), ``bad_args`` (``invalid_request`` with ``fields``), ``ran`` (the job ran: any result
but ``internal``, which is never allowed).
"""

from __future__ import annotations

import json
import math
import pickle
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st

from jobs.registry import JOBS
from tests.argument_strategies import Args, job_arguments

# The documented rules (docs/contract.md), written out rather than imported from the product.
JOB_ID_RULE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
JOB_NAME_RULE = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_PAYLOAD_BYTES = 1_000_000
MAX_ENQUEUE_MS = 253_402_300_799_000
MAX_TRY = 1_000_000
# GCAL_JOB_MAX_TRIES in the fuzz run (the default).
JOB_MAX_TRIES = 8
# Every rendered id carries a nonce of exactly this many bytes (letters and digits).
NONCE_BYTES = 16
NOW_MS = int(time.time() * 1000)
# A valid ``et`` no generated value shares, replaced in the bytes after encoding.
_SENTINEL_MS = 271_828_182_845_904


@dataclass(frozen=True)
class Expect:
    """The result categories the contract allows, the job name a named result must carry,
    and the error code, where it is certain."""

    allowed: frozenset[str]
    job: str | None = None
    code: str | None = None


def expect(*allowed: str, job: str | None = None, code: str | None = None) -> Expect:
    return Expect(frozenset(allowed), job, code)


NOT_A_JOB = expect("not_a_job", code="invalid_request")


@dataclass(frozen=True)
class JobIdShape:
    """A job id around a nonce: ``head + nonce + tail`` (the empty id has no nonce)."""

    kind: str
    head: bytes = b""
    tail: bytes = b""

    def render(self, nonce: bytes) -> bytes:
        assert len(nonce) == NONCE_BYTES
        return b"" if self.kind == "empty" else self.head + nonce + self.tail


def id_category(job_id: bytes) -> str | None:
    """What the id alone decides: ``dead_letter``, ``not_a_job``, or None (the payload
    decides)."""
    try:
        text = job_id.decode("utf-8")
    except UnicodeDecodeError:
        return "dead_letter"
    return None if JOB_ID_RULE.fullmatch(text) else "not_a_job"


@dataclass(frozen=True)
class Entry:
    """One queue member and what is stored for it. ``redis_type``: how the payload is stored
    (``string`` as producers do; ``none``: nothing; else another Redis type)."""

    job: str
    shape: str
    job_id: JobIdShape
    payload: bytes
    expect: Expect
    redis_type: str = "string"

    def __repr__(self) -> str:
        # Payloads run to a megabyte: show their start, so a failing batch stays readable.
        payload = self.payload[:120] + (b"..." if len(self.payload) > 120 else b"")
        return (
            f"Entry({self.job!r}, {self.shape!r}, {self.job_id!r}, {payload!r}, "
            f"redis_type={self.redis_type!r})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # hypothesis prints examples with this

    def expected_for(self, job_id: bytes) -> Expect:
        decided = id_category(job_id)
        if decided == "dead_letter":
            return expect("dead_letter")
        if decided == "not_a_job":
            return NOT_A_JOB
        return self.expect


# Job ids ---------------------------------------------------------------------------------------

_id_chars = st.from_regex(rb"[A-Za-z0-9_.-]{0,56}", fullmatch=True)
# A surrogate encoded as if it were a character (CESU-8): not UTF-8. In a job id it is
# refused as such; in a payload it is read as the JSON escape would be (see surrogate()).
_SURROGATE_BYTES = b"\xed\xa0\x80"
_invalid_utf8 = st.sampled_from(
    [b"\xff", b"\xfe\xff", b"\x80", b"\xc0\x80", b"\xf8\x88\x80\x80\x80", b"\xe2\x82"]
)
_odd_bytes = st.sampled_from(
    [b":", b"*", b"?", b"[", b"]", b" ", b"\t", b"\n", b"\x00", b"/", b"\\", b"{", b"}", b"%", b"@"]
)


def _shape(kind: str, head: st.SearchStrategy[bytes], tail: st.SearchStrategy[bytes]) -> Any:
    return st.builds(JobIdShape, st.just(kind), head, tail)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices``, each about as often as its weight says (``one_of`` is even)."""
    pool = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(pool).flatmap(lambda strategy: strategy)


job_ids: st.SearchStrategy[JobIdShape] = weighted(
    # Valid ids, up to exactly 128 bytes, as most producers send them.
    (24, _shape("valid", _id_chars, _id_chars)),
    (
        1,
        _shape(
            "dots", st.sampled_from([b"..", b".", b"../", b"..."]), st.sampled_from([b"..", b""])
        ),
    ),
    (
        1,
        _shape("colon", _id_chars.map(lambda b: b + b":"), st.sampled_from([b"", b":x", b":done"])),
    ),
    (1, _shape("glob", st.sampled_from([b"*", b"?", b"[a-z]"]), st.sampled_from([b"", b"*"]))),
    (
        1,
        _shape("space", st.sampled_from([b" ", b""]), st.sampled_from([b" x", b"\t", b"\n", b" "])),
    ),
    (1, _shape("odd_bytes", _id_chars, _odd_bytes)),
    (
        1,
        _shape(
            "unicode",
            st.just(b""),
            st.sampled_from(["é", "日本", "\u200b", "\U0001f600"]).map(str.encode),
        ),
    ),
    (1, st.just(JobIdShape("empty"))),
    # Over-long: 129 bytes (one over) up to a few KB.
    (
        1,
        _shape(
            "too_long",
            st.integers(128 - NONCE_BYTES + 1, 4_000).map(lambda n: b"x" * n),
            st.just(b""),
        ),
    ),
    (
        2,
        _shape(
            "not_utf8", _id_chars.map(lambda b: b[:8]), _invalid_utf8 | st.just(_SURROGATE_BYTES)
        ),
    ),
)


# Payloads --------------------------------------------------------------------------------------


def _dumps(value: Any, **options: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), **options).encode()


def args_expect(args: Args) -> Expect:
    if args.valid is True:
        return expect("ran", job=args.job)
    if args.valid is False:
        return expect("bad_args", job=args.job, code="invalid_request")
    return expect("ran", "bad_args", job=args.job)


def _nest(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


# Around the interpreter's recursion limit (1000) is where parsing and re-encoding part ways.
_depths = st.one_of(st.integers(1, 100), st.integers(900, 1_100), st.integers(1_100, 200_000))
_wrong_any = st.sampled_from(
    [None, True, False, 0, -1, 1.5, math.nan, math.inf, "", "x", "1", [], [1], {}, {"a": 1}]
)
_extra_keys: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.sampled_from(["x", "ctx", "self", "r", "s", "job_id", "__proto__", "\ud800"]),
    st.sampled_from([None, 1, "y", [], {}]),
    max_size=3,
)


@st.composite
def _envelope(draw: st.DrawFn, args: Args) -> dict[str, Any]:
    """A well-formed arq job for ``args``, optionally without its optional keys, with extras."""
    job: dict[str, Any] = {
        "t": draw(st.one_of(st.none(), st.integers(1, JOB_MAX_TRIES))),
        "f": args.job,
        "a": [],
        "k": args.value,
        "et": draw(st.one_of(st.just(NOW_MS), st.integers(0, MAX_ENQUEUE_MS))),
    }
    for optional in ("t", "a"):
        if draw(st.integers(0, 4)) == 0:
            del job[optional]
    return {**draw(_extra_keys), **job}


@st.composite
def well_formed(draw: st.DrawFn, args: Args) -> tuple[str, bytes, Expect]:
    job = draw(_envelope(args))
    encoding = draw(st.sampled_from(["compact", "spaced", "unescaped"]))
    if encoding == "spaced":
        return (
            "well_formed",
            json.dumps(job, indent=draw(st.integers(0, 4))).encode(),
            args_expect(args),
        )
    if encoding == "unescaped":
        try:
            return "well_formed:utf8", _dumps(job, ensure_ascii=False), args_expect(args)
        except UnicodeEncodeError:  # a lone surrogate (in an extra key): see surrogate()
            raw = json.dumps(job, ensure_ascii=False).encode("utf-8", "surrogatepass")
            return "well_formed:surrogate_raw", raw, args_expect(args)
    return "well_formed", _dumps(job), args_expect(args)


@st.composite
def broken_field(draw: st.DrawFn, args: Args) -> tuple[str, bytes, Expect]:
    """One of ``t``, ``et``, ``f``, ``a``, ``k`` missing, of a wrong type, or out of range."""
    job = draw(_envelope(args))
    key = draw(st.sampled_from(["t", "et", "f", "a", "k"]))
    if draw(st.integers(0, 3)) == 0:
        job.pop(key, None)
        outcome = {
            "t": args_expect(args),
            "a": args_expect(args),
            "k": expect("bad_args", job=args.job, code="invalid_request"),
        }.get(key, NOT_A_JOB)
        return f"missing:{key}", _dumps(job), outcome
    if key == "t":
        job["t"] = draw(
            st.one_of(
                _wrong_any.filter(lambda v: v is not None),
                st.sampled_from([0, -1, MAX_TRY + 1, 2**63, 1.0, "1"]),
            )
        )
    elif key == "et":
        job["et"] = draw(
            st.one_of(
                _wrong_any.filter(lambda v: type(v) is not int or v != 0),  # 0 is a valid et
                st.sampled_from([-1, MAX_ENQUEUE_MS + 1, 2**63, float(NOW_MS), str(NOW_MS)]),
            )
        )
    elif key == "f":
        job["f"] = draw(
            st.one_of(
                # Not "x": a well-formed name, of no job (unknown_job() sends those).
                _wrong_any.filter(lambda v: v != "x"),
                st.sampled_from(
                    [
                        args.job.upper(),
                        f"{args.job}\x00",
                        f"{args.job}\ud800",
                        f" {args.job}",
                        f"{args.job}:x",
                        f"1{args.job}",
                        "a" * 65,
                        "",
                        "é",
                    ]
                ),
            )
        )
    elif key == "a":
        wrong = draw(_wrong_any.filter(lambda v: not isinstance(v, list)))
        positional = draw(st.sampled_from([["u1"], [None], [{}], [args.value]]))
        if draw(st.booleans()):
            job["a"] = positional
            shape = "positional"
            return shape, _dumps(job), expect("ran", job=args.job, code="invalid_request")
        job["a"] = wrong
    else:
        job["k"] = draw(_wrong_any.filter(lambda v: not isinstance(v, dict)))
    return f"wrong:{key}", _dumps(job), NOT_A_JOB


@st.composite
def unknown_job(draw: st.DrawFn, args: Args) -> tuple[str, bytes, Expect]:
    job = draw(_envelope(args))
    job["f"] = draw(
        st.from_regex(JOB_NAME_RULE, fullmatch=True).filter(lambda name: name not in JOBS)
    )
    return "unknown_job", _dumps(job), expect("unknown_job", job=job["f"], code="invalid_request")


@st.composite
def tries_used_up(draw: st.DrawFn, args: Args) -> tuple[str, bytes, Expect]:
    """``t`` past the worker's tries: the job has no try left to run."""
    job = draw(_envelope(args))
    job["t"] = draw(st.integers(JOB_MAX_TRIES + 1, MAX_TRY))
    return "t:beyond_tries", _dumps(job), NOT_A_JOB


@st.composite
def deep(draw: st.DrawFn, args: Args) -> tuple[str, bytes, Expect]:
    """Nesting as deep as the interpreter's recursion limit and far beyond."""
    nested = _nest(draw(_depths), draw(st.sampled_from(["list", "object"])))
    where = draw(st.sampled_from(["payload", "envelope", "argument", "event"]))
    job = draw(_envelope(args))
    marker = "\x1e"  # stands in for the nested text, then is replaced by it
    if where == "payload":
        return "deep:payload", nested.encode(), NOT_A_JOB
    if where == "envelope":
        job["deep"] = marker
        outcome = expect("not_a_job", *args_expect(args).allowed, job=args.job)
    elif where == "event" and args.job == "create_event":
        job["k"] = {**args.value, "event": marker}
        outcome = expect("not_a_job", "bad_args", job=args.job)
    else:
        job["k"] = {**args.value, "deep": marker}
        outcome = expect("not_a_job", "bad_args", job=args.job)
    text = json.dumps(job, separators=(",", ":")).replace(json.dumps(marker), nested, 1)
    return f"deep:{where}", text.encode(), outcome


@st.composite
def huge(draw: st.DrawFn, args: Args) -> tuple[str, bytes, Expect]:
    """Just over the 1 MB limit, or just under it with the bulk in an argument or beside."""
    job = draw(_envelope(args))
    over = draw(st.booleans())
    size = draw(
        st.integers(MAX_PAYLOAD_BYTES + 1, MAX_PAYLOAD_BYTES + 50_000)
        if over
        else st.integers(MAX_PAYLOAD_BYTES - 60_000, MAX_PAYLOAD_BYTES - 10_000)
    )
    in_args = draw(st.booleans())
    if in_args:
        job["k"] = {**args.value, "pad": ""}
    else:
        job["pad"] = ""
    base = len(_dumps(job))
    padding = "x" * max(size - base, 0)
    if in_args:
        job["k"]["pad"] = padding
    else:
        job["pad"] = padding
    if over:
        return "huge:over", _dumps(job), NOT_A_JOB
    outcome = (
        expect("bad_args", job=args.job, code="invalid_request") if in_args else args_expect(args)
    )
    return "huge:under", _dumps(job), outcome


@st.composite
def undecodable(draw: st.DrawFn, args: Args) -> tuple[str, bytes, Expect]:
    """Bytes no JSON parser may accept: invalid UTF-8, raw control characters, cut short."""
    job = draw(_envelope(args))
    how = draw(st.sampled_from(["invalid_utf8", "raw_control", "truncated", "empty"]))
    if how == "empty":
        return "bytes:empty", draw(st.sampled_from([b"", b" ", b"\n", b"\x00"])), NOT_A_JOB
    if how == "truncated":
        text = _dumps(job)
        return "bytes:truncated", text[: draw(st.integers(0, len(text) - 1))], NOT_A_JOB
    marker = "\x1e"
    where = draw(st.sampled_from(["envelope", "argument"]))
    if where == "argument":
        job["k"] = {**args.value, "note": marker}
    else:
        job["note"] = marker
    inserted = (
        draw(_invalid_utf8)
        if how == "invalid_utf8"
        else draw(st.sampled_from([b"\x00", b"\x01", b"\n", b"\x1b", b"\x1f"]))
    )
    return f"bytes:{how}", _dumps(job).replace(b"\\u001e", inserted, 1), NOT_A_JOB


@st.composite
def surrogate(draw: st.DrawFn, args: Args) -> tuple[str, bytes, Expect]:
    """A lone surrogate written as a JSON escape (valid JSON, no UTF-8 text), or as the raw
    bytes such an escape would be (CESU-8): Python's ``json.loads`` reads bytes with
    ``surrogatepass``, so the worker reads both alike."""
    job = draw(_envelope(args))
    lone = draw(st.sampled_from(["\ud800", "\udfff", "\udc00x", "x\ud83d"]))
    where = draw(st.sampled_from(["f", "envelope", "user_id", "argument_name", "summary"]))
    outcome = expect("bad_args", job=args.job, code="invalid_request")
    if where == "f":
        job["f"] = args.job + lone
        outcome = NOT_A_JOB
    elif where == "envelope":
        job["note"] = lone
        outcome = args_expect(args)
    elif where == "argument_name":
        job["k"] = {**args.value, lone: 1}
    elif where == "summary" and isinstance(args.value.get("event"), dict):
        job["k"] = {**args.value, "event": {**args.value["event"], "summary": lone}}
    else:
        job["k"] = {**args.value, "user_id": lone}
    if draw(st.booleans()):
        raw = json.dumps(job, separators=(",", ":"), ensure_ascii=False)
        return f"surrogate_raw:{where}", raw.encode("utf-8", "surrogatepass"), outcome
    return f"surrogate:{where}", _dumps(job), outcome


@st.composite
def not_a_job_object(draw: st.DrawFn, args: Args) -> tuple[str, bytes, Expect]:
    """arq's own pickle of the job, JSON that is not an object, oversized numbers."""
    job = draw(_envelope(args))
    how = draw(st.sampled_from(["pickle", "json_value", "big_int"]))
    if how == "pickle":
        protocol = draw(st.integers(0, pickle.HIGHEST_PROTOCOL))
        return f"pickle:{protocol}", pickle.dumps(job, protocol=protocol), NOT_A_JOB
    if how == "json_value":
        value = draw(st.sampled_from([[], [job], "job", 1, 1.5, None, True]))
        return "json:not_object", _dumps(value), NOT_A_JOB
    # Python refuses integers of more than 4300 digits.
    job["et"] = _SENTINEL_MS
    digits = b"9" * draw(st.integers(4_301, 20_000))
    text = _dumps(job).replace(b'"et":%d' % _SENTINEL_MS, b'"et":' + digits)
    return "json:big_int", text, NOT_A_JOB


@st.composite
def duplicate_keys(draw: st.DrawFn, args: Args) -> tuple[str, bytes, Expect]:
    """The same key twice (parsers differ on which wins): any typed result is fine."""
    job = draw(_envelope(args))
    first = _dumps({"f": draw(_wrong_any), "k": draw(_wrong_any)})[1:-1]
    text = b"{" + first + b"," + _dumps(job)[1:]
    return "json:duplicate_keys", text, expect("not_a_job", "unknown_job", "bad_args", "ran")


_shapes = weighted(
    (12, st.just(well_formed)),
    (3, st.just(broken_field)),
    (1, st.just(unknown_job)),
    (1, st.just(tries_used_up)),
    (1, st.just(deep)),
    (1, st.just(huge)),
    (1, st.just(undecodable)),
    (1, st.just(surrogate)),
    (1, st.just(not_a_job_object)),
    (1, st.just(duplicate_keys)),
)
_storage = st.sampled_from(["string"] * 18 + ["none", "other"])


@st.composite
def queue_entries(draw: st.DrawFn, jobs: tuple[str, ...] = tuple(JOBS)) -> Entry:
    args = draw(job_arguments(jobs))
    shape, payload, outcome = draw(_shapes.flatmap(lambda make: make(args)))
    entry = Entry(args.job, shape, draw(job_ids), payload, outcome)
    storage = draw(_storage)
    if storage == "none":
        return replace(entry, shape="stored:none", redis_type="none", expect=NOT_A_JOB)
    if storage == "other":
        kind = draw(st.sampled_from(["hash", "list", "set", "zset"]))
        return replace(entry, shape=f"stored:{kind}", redis_type=kind, expect=NOT_A_JOB)
    return entry
