"""Hypothesis strategies for job arguments (arq's ``k``): a valid object per job, and the
mutations of it a producer could send.

    args = draw(job_arguments())        # Args(job="create_event", value={...}, valid=True, ...)

Valid objects are written per job (the cross-field rules, such as an end after its start, are
not in the schemas). The mutations are driven by each argument model's JSON Schema, so a new
argument or job is mutated without touching this file: a required field dropped, an unknown
field added (reserved names such as ``ctx`` and ``self`` among them), a value of a JSON type
the schema does not allow, a giant string, any short text (control characters included) in a
string field, an odd time zone. Each object says what the
argument model must make of it (:attr:`Args.valid`); ``tests/test_fuzz_strategies.py`` checks
those claims against the models, so the fuzz test can trust them.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from jobs.events import event_id_for
from jobs.registry import JOBS

# Linked to an emulator account for the fuzz run; most valid objects act for this user.
LINKED_USER = "fuzz-linked-user"
LINKED_EMAIL = "fuzzer@example.com"
# In every valid event's description: users' calendar data, which no log line may show.
CALENDAR_DATA = "fuzz-private-note "
# Idempotency keys create_event uses, and so the ids of events update/delete can find.
EVENT_KEYS = tuple(f"fuzz-key-{n}" for n in range(4))
KNOWN_EVENT_IDS = tuple(event_id_for(LINKED_USER, "primary", key) for key in EVENT_KEYS)

# Names a producer might collide with: arq's and Python's own, our wire keyword, camelCase.
RESERVED_NAMES = (
    "ctx",
    "self",
    "arguments",
    "args",
    "kwargs",
    "job_id",
    "job_try",
    "score",
    "redis",
    "__class__",
    "__dict__",
    "__init__",
    "model_config",
    "userId",
    "",
)
REAL_ZONES = (
    "UTC",
    "Europe/Zurich",
    "America/New_York",
    "America/Argentina/ComodRivadavia",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Etc/GMT+12",
    "Etc/GMT-14",
)
# Time zone names that are odd but may be valid, or look valid and are not.
ODD_ZONES = (
    "",
    "utc",
    "Etc/GMT+15",
    "Europe/zurich",
    "Europe",
    "Europe/",
    "/etc/localtime",
    "../../../../etc/passwd",
    "Europe/../UTC",
    "Europe/Zurich\x00",
    " UTC",
    "UTC\n",
    "+01:00",
    "Z",
    "EST5EDT",
    "Factory",
    "posixrules",
    "localtime",
    "zoneinfo/UTC",
    "Europe/Zürich",
    "\\UTC",
    "A" * 64,
    "A" * 65,
    "a/" * 40,
)
_OFFSETS = ("Z", "+00:00", "-00:00", "+05:45", "-03:30", "+14:00", "-12:00")
_WEIRD_NUMBERS = (0, -1, 1, 2**31, 2**63, 10**30, -(10**30))


@dataclass(frozen=True)
class Args:
    """A ``k`` object for ``job``; ``valid``: the model must accept it (True), must refuse it
    (False), or either (None)."""

    job: str
    value: dict[str, Any]
    valid: bool | None
    mutation: str


# Valid pieces ---------------------------------------------------------------------------------

_text = st.text(max_size=40)  # every code point but surrogates: control characters included
# Wall-clock times: an offset or a timeZone is added where each is used.
_moments = st.datetimes(
    min_value=dt.datetime(2020, 1, 1),  # noqa: DTZ001 - naive on purpose, see above
    max_value=dt.datetime(2030, 12, 31),  # noqa: DTZ001
)
_durations = st.integers(min_value=60, max_value=14 * 86_400).map(lambda s: dt.timedelta(seconds=s))


def _stamp(moment: dt.datetime, offset: str = "") -> str:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + offset


user_ids = st.one_of(
    st.just(LINKED_USER),
    st.just(LINKED_USER),
    st.just(LINKED_USER),
    st.from_regex(r"[A-Za-z0-9._@+-]{1,128}", fullmatch=True),
)
calendar_ids = st.one_of(
    st.just("primary"),
    st.just(LINKED_EMAIL),
    st.from_regex(r"[A-Za-z0-9._@+%#-]{1,64}", fullmatch=True),
)
event_ids = st.one_of(
    st.sampled_from(KNOWN_EVENT_IDS), st.from_regex(r"[A-Za-z0-9_]{1,64}", fullmatch=True)
)


@st.composite
def windows(draw: st.DrawFn, max_length: dt.timedelta | None = None) -> tuple[str, str]:
    """``time_min``, ``time_max``: RFC 3339 with one offset, the second after the first."""
    start, offset = draw(_moments), draw(st.sampled_from(_OFFSETS))
    length = draw(_durations)
    if max_length is not None:
        length = min(length, max_length)
    return _stamp(start, offset), _stamp(start + length, offset)


@st.composite
def event_times(draw: st.DrawFn) -> dict[str, Any]:
    """An event's ``start`` and ``end``: all-day dates, or times with an offset or a zone."""
    start = draw(_moments)
    kind = draw(st.sampled_from(["date", "offset", "zone"]))
    if kind == "date":
        end = start.date() + dt.timedelta(days=draw(st.integers(1, 14)))
        return {"start": {"date": start.date().isoformat()}, "end": {"date": end.isoformat()}}
    end = start + draw(_durations)
    date_time = draw(st.sampled_from(["dateTime", "date_time"]))  # both spellings are accepted
    if kind == "offset":
        offset = draw(st.sampled_from(_OFFSETS))
        return {
            "start": {date_time: _stamp(start, offset)},
            "end": {date_time: _stamp(end, offset)},
        }
    zone = draw(st.sampled_from(REAL_ZONES))
    return {
        "start": {date_time: _stamp(start), "timeZone": zone},
        "end": {date_time: _stamp(end), "timeZone": zone},
    }


@st.composite
def event_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Optional writable Event fields (what EventInput and EventPatch share), all valid."""
    fields: dict[str, Any] = {}
    for name, values in (
        ("summary", _text),
        ("description", st.text(max_size=200)),
        ("location", _text),
        ("visibility", st.sampled_from(["default", "public", "private", "confidential"])),
        ("transparency", st.sampled_from(["opaque", "transparent"])),
        ("colorId", st.integers(1, 11).map(str)),
    ):
        if draw(st.booleans()):
            fields[name] = draw(values)
    if draw(st.booleans()):
        count = draw(st.integers(0, 4))
        fields["attendees"] = [
            {"email": f"guest{n}@example.com", "displayName": draw(_text)} for n in range(count)
        ]
    if draw(st.booleans()):
        fields["reminders"] = draw(
            st.one_of(
                st.just({"useDefault": True}),
                st.lists(
                    st.fixed_dictionaries(
                        {
                            "method": st.sampled_from(["email", "popup"]),
                            "minutes": st.integers(0, 40320),
                        }
                    ),
                    max_size=5,
                ).map(lambda overrides: {"overrides": overrides}),
            )
        )
    return fields


def _recurrence_allowed(times: dict[str, Any]) -> bool:
    start = times["start"]
    return "date" in start or "timeZone" in start


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    times = draw(event_times())
    event = {**draw(event_fields()), **times}
    event["description"] = CALENDAR_DATA + event.get("description", "")
    if _recurrence_allowed(times) and draw(st.booleans()):
        event["recurrence"] = ["RRULE:FREQ=DAILY;COUNT=3"]
    if draw(st.booleans()):
        event["conference"] = draw(st.booleans())
    if draw(st.booleans()):
        event["id"] = draw(st.from_regex(r"[a-v0-9]{5,40}", fullmatch=True))
    return event


@st.composite
def patches(draw: st.DrawFn) -> dict[str, Any]:
    patch = draw(event_fields())
    if draw(st.booleans()):
        patch.update(draw(event_times()))
    if draw(st.booleans()):
        patch["conference"] = True
    return patch or {"summary": draw(_text)}


def _optional(
    draw: st.DrawFn, out: dict[str, Any], name: str, values: st.SearchStrategy[Any]
) -> None:
    if draw(st.booleans()):
        out[name] = draw(values)


_send_updates = st.sampled_from(["all", "externalOnly", "none"])
_etags = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200)


@st.composite
def _get_events(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"user_id": draw(user_ids)}
    _optional(draw, out, "calendar_id", calendar_ids)
    if draw(st.booleans()):
        out["time_min"], out["time_max"] = draw(windows())
    _optional(draw, out, "q", st.text(max_size=100))
    _optional(draw, out, "single_events", st.booleans())
    if out.get("single_events", True):
        _optional(draw, out, "order_by", st.sampled_from(["startTime", "updated"]))
    _optional(draw, out, "time_zone", st.sampled_from(REAL_ZONES))
    _optional(draw, out, "show_deleted", st.booleans())
    _optional(draw, out, "max_results", st.integers(1, 2500))
    _optional(draw, out, "max_events", st.integers(1, 10_000))
    _optional(draw, out, "projection", st.sampled_from(["full", "basic"]))
    return out


@st.composite
def _create_event(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"user_id": draw(user_ids), "event": draw(events())}
    _optional(draw, out, "calendar_id", calendar_ids)
    _optional(
        draw, out, "idempotency_key", st.one_of(st.sampled_from(EVENT_KEYS), _text.filter(bool))
    )
    _optional(draw, out, "send_updates", _send_updates)
    return out


@st.composite
def _update_event(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {
        "user_id": draw(user_ids),
        "event_id": draw(event_ids),
        "patch": draw(patches()),
    }
    _optional(draw, out, "calendar_id", calendar_ids)
    _optional(draw, out, "etag", _etags)
    _optional(draw, out, "send_updates", _send_updates)
    return out


@st.composite
def _delete_event(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"user_id": draw(user_ids), "event_id": draw(event_ids)}
    _optional(draw, out, "calendar_id", calendar_ids)
    _optional(draw, out, "etag", _etags)
    _optional(draw, out, "send_updates", _send_updates)
    return out


@st.composite
def _get_free_busy(draw: st.DrawFn) -> dict[str, Any]:
    time_min, time_max = draw(windows(max_length=dt.timedelta(days=62)))
    out: dict[str, Any] = {"user_id": draw(user_ids), "time_min": time_min, "time_max": time_max}
    _optional(draw, out, "calendar_ids", st.lists(calendar_ids, min_size=1, max_size=50))
    _optional(draw, out, "time_zone", st.sampled_from(REAL_ZONES))
    return out


_user_only = st.fixed_dictionaries({"user_id": user_ids})


@st.composite
def _sync_calendar(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {"user_id": draw(user_ids)}
    _optional(draw, out, "calendar_id", calendar_ids)
    return out


VALID_ARGUMENTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "get_events": _get_events(),
    "create_event": _create_event(),
    "update_event": _update_event(),
    "delete_event": _delete_event(),
    "list_calendars": _user_only,
    "get_free_busy": _get_free_busy(),
    "sync_calendar": _sync_calendar(),
    "sync_calendars": _user_only,
    "disconnect": _user_only,
}


# Mutations, read from the JSON Schemas --------------------------------------------------------


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return _resolve(defs[ref.rsplit("/", 1)[1]], defs) if ref else schema


def json_types(schema: dict[str, Any], defs: dict[str, Any]) -> set[str]:
    """The JSON types a (sub)schema allows; empty when it does not say."""
    schema = _resolve(schema, defs)
    if "anyOf" in schema:
        return set().union(*(json_types(option, defs) for option in schema["anyOf"]))
    if "type" in schema:
        kind = schema["type"]
        return {kind} if isinstance(kind, str) else set(kind)
    if "properties" in schema:
        return {"object"}
    return set()


def _object_schema(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any] | None:
    schema = _resolve(schema, defs)
    if "properties" in schema:
        return schema
    for option in schema.get("anyOf", ()):
        found = _object_schema(option, defs)
        if found is not None:
            return found
    return None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def objects_in(
    value: Any, schema: dict[str, Any], defs: dict[str, Any], path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every JSON object in ``value`` that the schema describes, with its path."""
    found: list[tuple[tuple[str, ...], dict[str, Any]]] = []
    object_schema = _object_schema(schema, defs)
    if not isinstance(value, dict) or object_schema is None:
        return found
    found.append((path, object_schema))
    for name, child in value.items():
        sub = object_schema["properties"].get(name) or object_schema["properties"].get(_camel(name))
        if sub is not None:
            found += objects_in(child, sub, defs, (*path, name))
    return found


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# JSON values by type, for "a value of a type the schema does not allow".
_VALUES_BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "null": st.none(),
    "boolean": st.booleans(),
    "integer": st.sampled_from(_WEIRD_NUMBERS),
    "number": st.sampled_from([0.5, -1.5, 1e300, math.nan, math.inf, -math.inf]),
    "string": st.sampled_from(["", "5", "true", "null", "u1", "primary", "2024-05-01"]),
    "array": st.sampled_from([[], [1], ["u1"], [None], [[]]]),
    "object": st.sampled_from([{}, {"a": 1}, {"user_id": "u1"}]),
}


def wrong_values(allowed: set[str]) -> st.SearchStrategy[Any] | None:
    # An integer is a number too; a fractional number is never an integer (strict JSON mode).
    barred = allowed | ({"integer"} if "number" in allowed else set())
    choices = [values for kind, values in _VALUES_BY_TYPE.items() if kind not in barred]
    return st.one_of(choices) if choices else None


_giant_strings = st.builds(
    lambda char, size: char * size,
    st.sampled_from(["x", "7", "é", "日", "\U0001f600", "%", "/"]),
    # Past every string limit (8192 is the longest), and under the 1 MB payload limit even
    # when each character is written as a 12-byte escape.
    st.integers(10_001, 60_000),
)


_any_text = st.text(max_size=30) | st.sampled_from(["\r\n", "a\x00b", "\x7f", "\u2028", "\ufeff"])


def _set(value: Any, path: tuple[str, ...], change: Any) -> Any:
    """A copy of ``value`` with the object at ``path`` replaced by ``change(object)``."""
    if not path:
        return change(value)
    return {**value, path[0]: _set(value[path[0]], path[1:], change)}


@st.composite
def mutated(draw: st.DrawFn, job: str, value: dict[str, Any]) -> Args:
    """One mutation of the valid object ``value`` for ``job``, somewhere inside it."""
    schema = JOBS[job].args.model_json_schema()
    defs = schema.get("$defs", {})
    path, node = draw(st.sampled_from(objects_in(value, schema, defs)))
    properties: dict[str, Any] = node["properties"]
    accepted = set(properties) | {_snake(name) for name in properties}
    where = ".".join(path)
    kinds = ["extra", "wrong_type", "giant", "text"]
    present_required = [n for n in node.get("required", ()) if n in _dig(value, path)]
    if present_required:
        kinds.append("missing")
    zone_fields = [n for n in properties if n in ("time_zone", "timeZone")]
    if zone_fields:
        kinds.append("zone")
    kind = draw(st.sampled_from(kinds))
    if kind == "missing":
        name = draw(st.sampled_from(present_required))
        drop = {name, _snake(name)}
        out = _set(value, path, lambda o: {k: v for k, v in o.items() if k not in drop})
        return Args(job, out, False, f"missing:{where}.{name}".lstrip("."))
    if kind == "extra":
        name = draw(
            st.one_of(st.sampled_from(RESERVED_NAMES), st.text(max_size=12)).filter(
                lambda n: n not in accepted
            )
        )
        extra: Any = draw(st.sampled_from([None, 1, "x", {}, []]))
        out = _set(value, path, lambda o: {**o, name: extra})
        return Args(job, out, False, f"extra:{where}")
    if kind == "zone":
        name = draw(st.sampled_from(zone_fields))
        zone = draw(st.sampled_from(ODD_ZONES))
        out = _set(value, path, lambda o: {**o, name: zone})
        return Args(job, out, None, f"zone:{where}.{name}".lstrip("."))
    typed = [
        (name, json_types(sub, defs))
        for name, sub in properties.items()
        if json_types(sub, defs)
        and (kind not in ("giant", "text") or "string" in json_types(sub, defs))
    ]
    if kind == "wrong_type":
        typed = [(n, t) for n, t in typed if wrong_values(t) is not None]
    if not typed:
        return Args(job, value, True, "none")
    name, allowed = draw(st.sampled_from(typed))
    if kind == "giant":
        replacement = draw(_giant_strings)
    elif kind == "text":
        # Any short text, control characters included: some fields take it, some refuse it.
        replacement = draw(_any_text)
    else:
        strategy = wrong_values(allowed)
        assert strategy is not None
        replacement = draw(strategy)
    drop = {name, _snake(name)}
    out = _set(
        value, path, lambda o: {**{k: v for k, v in o.items() if k not in drop}, name: replacement}
    )
    valid = None if kind == "text" else False
    return Args(job, out, valid, f"{kind}:{where}.{name}".lstrip("."))


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


@st.composite
def job_arguments(draw: st.DrawFn, jobs: tuple[str, ...] = tuple(JOBS)) -> Args:
    """A ``k`` object for one of ``jobs``: valid about half of the time, else mutated."""
    job = draw(st.sampled_from(jobs))
    value = draw(VALID_ARGUMENTS[job])
    if draw(st.booleans()):
        return Args(job, value, True, "none")
    return draw(mutated(job, value))
