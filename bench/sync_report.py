"""The sync benchmark's record: what each part measured, the JSON result file and the table.

    report = SyncReport(plan=..., rounds=[...], ceiling=..., memory=[...], latencies=[...])
    write(report, path)      # JSON, machine-readable
    print(table(report))     # markdown, short

Figures are per sync (one ``sync_calendar`` job), per Google request, per tracked event (one
field of a calendar's seen hash) and per change (one event changed at the emulator).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LATENCY_GOAL_P99_S = 2.0  # issue 10: a change reaches a subscriber by push within this


def percentile(values: tuple[float, ...], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a handful of samples stays honest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@dataclass(frozen=True)
class Round:
    """One sync round: every calendar synced once."""

    name: str
    syncs: int
    google_requests: dict[str, int]  # by Google method, over the round
    announced: int  # notifications published during the round
    wall_s: float
    worker_cpu_s: float
    others_on_worker_core_percent: float  # the shared machine's noise on the worker's core

    @property
    def requests_per_calendar(self) -> float:
        return sum(self.google_requests.values()) / self.syncs

    @property
    def cpu_ms_per_sync(self) -> float:
        return 1000 * self.worker_cpu_s / self.syncs


@dataclass(frozen=True)
class Ceiling:
    """arq's no-op job, as many at once as a round has syncs: arq's own cost per job."""

    jobs: int
    wall_s: float
    worker_cpu_s: float
    others_on_worker_core_percent: float

    @property
    def cpu_ms_per_job(self) -> float:
        return 1000 * self.worker_cpu_s / self.jobs


@dataclass(frozen=True)
class Memory:
    """Seen hashes of one encoding: Redis's ``MEMORY USAGE`` over the events they track."""

    name: str
    encoding: str  # what OBJECT ENCODING answered for every hash measured
    hashes: int
    events: int
    bytes: int

    @property
    def bytes_per_event(self) -> float:
        return self.bytes / self.events


@dataclass(frozen=True)
class Latency:
    """Changes made one at a time at the emulator, each until its stream entry."""

    name: str
    seconds: tuple[float, ...]
    bound_s: float | None = None  # what the design promises, when there is a bound

    @property
    def p50_s(self) -> float:
        return percentile(self.seconds, 0.50)

    @property
    def p99_s(self) -> float:
        return percentile(self.seconds, 0.99)

    @property
    def max_s(self) -> float:
        return max(self.seconds)


@dataclass
class SyncReport:
    plan: dict[str, Any]
    started_at: str
    finished_at: str = ""
    redis: dict[str, str] = field(default_factory=dict)  # version, listpack thresholds
    settings: dict[str, Any] = field(default_factory=dict)  # the worker's, where they matter
    first_round: Round | None = None
    rounds: list[Round] = field(default_factory=list)
    ceiling: Ceiling | None = None
    memory: list[Memory] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)
    worker_exits: list[int | None] = field(default_factory=list)
    auth_web_exits: list[int | None] = field(default_factory=list)


def _figures(obj: Any) -> dict[str, Any]:
    """A record's fields and its derived figures."""
    out = dataclasses.asdict(obj)
    for name in dir(type(obj)):
        if isinstance(getattr(type(obj), name), property):
            out[name] = getattr(obj, name)
    return out


def as_json(report: SyncReport) -> dict[str, Any]:
    data: dict[str, Any] = {
        "plan": report.plan,
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "redis": report.redis,
        "settings": report.settings,
        "first_round": _figures(report.first_round) if report.first_round else None,
        "rounds": [_figures(r) for r in report.rounds],
        "ceiling": _figures(report.ceiling) if report.ceiling else None,
        "memory": [_figures(m) for m in report.memory],
        "latencies": [_figures(lat) for lat in report.latencies],
        "worker_exits": report.worker_exits,
        "auth_web_exits": report.auth_web_exits,
    }
    if report.rounds and report.ceiling:
        data["cpu_ratio_to_noop"] = [
            r.cpu_ms_per_sync / report.ceiling.cpu_ms_per_job for r in report.rounds
        ]
    return data


def write(report: SyncReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(as_json(report), indent=1, allow_nan=False) + "\n")


def table(report: SyncReport) -> str:
    plan, s = report.plan, report.settings
    ceiling = report.ceiling
    lines = [
        f"\n### calendar sync ({plan['mode']}, started {report.started_at[:19]} UTC)\n",
        f"{plan['users']} users, one calendar of {plan['events']} events each; the worker on "
        f"one core, max_jobs {s.get('worker_max_jobs')}, poll delay "
        f"{s.get('worker_poll_delay')} s, scheduler tick {s.get('sync_tick_seconds')} s.\n",
        "| round | syncs | Google requests | per calendar | announced | wall s | "
        "worker CPU ms/sync | x arq no-op | others on worker core % |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    rounds = [report.first_round] if report.first_round else []
    for r in [*rounds, *report.rounds]:
        ratio = f"{r.cpu_ms_per_sync / ceiling.cpu_ms_per_job:.1f}" if ceiling else "-"
        methods = ", ".join(f"{k} {v}" for k, v in sorted(r.google_requests.items()))
        lines.append(
            f"| {r.name} | {r.syncs} | {methods} | {r.requests_per_calendar:.2f} | "
            f"{r.announced} | {r.wall_s:.1f} | {r.cpu_ms_per_sync:.2f} | {ratio} | "
            f"{r.others_on_worker_core_percent:.0f} |"
        )
    if ceiling:
        lines.append(
            f"| arq no-op job (ceiling) | {ceiling.jobs} | - | - | - | {ceiling.wall_s:.1f} | "
            f"{ceiling.cpu_ms_per_job:.2f} | 1.0 | {ceiling.others_on_worker_core_percent:.0f} |"
        )
    redis = report.redis
    lines += [
        "",
        f"Seen hashes (Redis {redis.get('version', '?')}: a hash of at most "
        f"hash-max-listpack-entries = {redis.get('hash-max-listpack-entries', '?')} fields, "
        f"each value at most hash-max-listpack-value = "
        f"{redis.get('hash-max-listpack-value', '?')} bytes, is a listpack):\n",
        "| seen hashes | encoding | calendars | events | bytes | bytes per event |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for m in report.memory:
        lines.append(
            f"| {m.name} | {m.encoding} | {m.hashes} | {m.events} | {m.bytes} | "
            f"{m.bytes_per_event:.1f} |"
        )
    lines += [
        "",
        "| change reaches the stream | changes | p50 s | p99 s | max s | bound s |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for lat in report.latencies:
        bound = f"{lat.bound_s:.2f}" if lat.bound_s is not None else "-"
        lines.append(
            f"| {lat.name} | {len(lat.seconds)} | {lat.p50_s:.3f} | {lat.p99_s:.3f} | "
            f"{lat.max_s:.3f} | {bound} |"
        )
    return "\n".join(lines)
