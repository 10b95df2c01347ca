"""The comparison's record: what each run measured, the medians over repeats, the ratios, the
JSON result file and the markdown table.

    result = build(plan=..., started=..., finished=..., cells=[...], idle=[...], ...)
    write(result, path)      # JSON, machine-readable
    print(table(result))     # markdown, short

Ratios are of medians and always ours over the other stack: for jobs/s above 1 is better for
ours, for CPU ms per job, RSS, idle CPU and latency below 1 is. A latency percentile that falls
on a job still unfinished when its run stopped waiting is ``null`` (its median too, if a
repeat had it so): the stack did not keep up with the offered rate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import os
import platform
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.idle_cost import GAP_SECONDS, IdleCost
from bench.jobs_rate import Scaling
from bench.load import Rate
from bench.open_loop import OpenLoopRun

NOOP = "no-op"
OURS = "ours"
CEILING = "arq no-op"  # the ceiling: arq as it comes
TUNED_CEILING = "arq no-op, tuned pool"  # arq on the product worker's Redis pool
CEILINGS = (CEILING, TUNED_CEILING)
PACKAGES = ("arq", "celery", "kombu", "redis", "google-api-python-client", "aiohttp")


@dataclass(frozen=True)
class Saturation:
    """A closed-loop run at saturation (from :class:`bench.load.Rate`)."""

    jobs: int
    wall_s: float
    jobs_per_s: float
    cpu_ms_per_job: float
    busy_percent: float  # the worker's CPU over wall time: near 100, the worker was the limit
    emulator_cpu_ms_per_job: float
    # Other processes' CPU on the worker's core over wall time: the shared machine's noise.
    others_on_worker_core_percent: float

    @classmethod
    def of(cls, rate: Rate, others_percent: float) -> Saturation:
        return cls(
            jobs=rate.jobs,
            wall_s=rate.wall_s,
            jobs_per_s=rate.jobs_per_s,
            cpu_ms_per_job=rate.cpu_ms_per_job,
            busy_percent=rate.busy_percent,
            emulator_cpu_ms_per_job=1000 * rate.emulator_cpu_s / rate.jobs,
            others_on_worker_core_percent=others_percent,
        )


@dataclass(frozen=True)
class LoadRun:
    """An open-loop run at ``fraction`` of ours' saturation rate."""

    fraction: float
    offered_per_s: float
    jobs: int
    unfinished: int
    delivered_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    cpu_ms_per_job: float | None
    max_lag_ms: float
    others_on_worker_core_percent: float
    # How busy each core was, every process counted: near 100, the machine, not the stack,
    # set the tail.
    worker_core_busy_percent: float
    other_core_busy_percent: float

    @classmethod
    def of(
        cls,
        fraction: float,
        run: OpenLoopRun,
        others_percent: float,
        cores_busy: tuple[float, float],
    ) -> LoadRun:
        return cls(
            fraction=fraction,
            offered_per_s=run.offered_per_s,
            jobs=run.jobs,
            unfinished=run.unfinished,
            delivered_per_s=run.delivered_per_s,
            p50_ms=run.percentile_ms(0.50),
            p99_ms=run.percentile_ms(0.99),
            cpu_ms_per_job=run.cpu_ms_per_job,
            max_lag_ms=run.max_lag_ms,
            others_on_worker_core_percent=others_percent,
            worker_core_busy_percent=cores_busy[0],
            other_core_busy_percent=cores_busy[1],
        )


@dataclass(frozen=True)
class Cell:
    """One stack on one scenario in one repeat (the ceiling: scenario ``no-op``, no loads)."""

    repeat: int
    stack: str
    scenario: str
    latency_ms: int
    saturation: Saturation
    loads: list[LoadRun]
    peak_rss_mib: float


@dataclass(frozen=True)
class IdleCpu:
    repeat: int
    stack: str
    cpu_percent: float


def median(values: Iterable[float | None]) -> float | None:
    """The median, a ``None`` (unfinished) counting as infinitely slow; ``None`` if that wins."""
    found = statistics.median(math.inf if v is None else v for v in values)
    return None if math.isinf(found) else found


def ratio(ours: float | None, other: float | None) -> float | None:
    if ours is None or other is None or other == 0:
        return None
    return ours / other


def load_key(fraction: float) -> str:
    return f"{round(100 * fraction)}%"


def _stack_summary(cells: list[Cell]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "jobs_per_s": median(c.saturation.jobs_per_s for c in cells),
        "cpu_ms_per_job": median(c.saturation.cpu_ms_per_job for c in cells),
        "busy_percent": median(c.saturation.busy_percent for c in cells),
        "others_on_worker_core_percent": median(
            c.saturation.others_on_worker_core_percent for c in cells
        ),
        "peak_rss_mib": median(c.peak_rss_mib for c in cells),
        "load": {},
    }
    for n, first in enumerate(cells[0].loads):
        runs = [c.loads[n] for c in cells]
        summary["load"][load_key(first.fraction)] = {
            "offered_per_s": median(r.offered_per_s for r in runs),
            "delivered_per_s": median(r.delivered_per_s for r in runs),
            "p50_ms": median(r.p50_ms for r in runs),
            "p99_ms": median(r.p99_ms for r in runs),
            "cpu_ms_per_job": median(r.cpu_ms_per_job for r in runs),
            "unfinished_max": max(r.unfinished for r in runs),
            "others_on_worker_core_percent": median(r.others_on_worker_core_percent for r in runs),
            "worker_core_busy_percent": median(r.worker_core_busy_percent for r in runs),
            "other_core_busy_percent": median(r.other_core_busy_percent for r in runs),
        }
    return summary


def _ratios(ours: dict[str, Any], other: dict[str, Any]) -> dict[str, float | None]:
    found = {
        key: ratio(ours[key], other[key])
        for key in ("jobs_per_s", "cpu_ms_per_job", "peak_rss_mib")
    }
    for load, figures in other["load"].items():
        for key in ("p50_ms", "p99_ms"):
            found[f"{key}@{load}"] = ratio(ours["load"][load][key], figures[key])
    return found


def summarize(cells: list[Cell], idle: list[IdleCpu]) -> dict[str, Any]:
    stacks = list(dict.fromkeys(c.stack for c in cells))
    baselines = [s for s in stacks if s != OURS and s not in CEILINGS]
    idle_cpu = {s: median(i.cpu_percent for i in idle if i.stack == s) for s in stacks}
    ceilings = {
        name: _stack_summary([c for c in cells if c.stack == name])
        for name in CEILINGS
        if name in stacks
    }
    scenarios = []
    keys = dict.fromkeys((c.scenario, c.latency_ms) for c in cells if c.scenario != NOOP)
    for scenario, latency in keys:
        per_stack = {
            stack: _stack_summary(
                [
                    c
                    for c in cells
                    if (c.stack, c.scenario, c.latency_ms) == (stack, scenario, latency)
                ]
            )
            for stack in stacks
            if stack not in CEILINGS
        }
        ours = per_stack[OURS]
        ratios = {f"{OURS}/{b}": _ratios(ours, per_stack[b]) for b in baselines}
        for name, ceiling in ceilings.items():
            ratios[f"{OURS}/{name}"] = {
                key: ratio(ours[key], ceiling[key])
                for key in ("jobs_per_s", "cpu_ms_per_job", "peak_rss_mib")
            }
        scenarios.append(
            {"scenario": scenario, "latency_ms": latency, "stacks": per_stack, "ratios": ratios}
        )
    return {
        "stacks": stacks,
        "idle_cpu_percent": idle_cpu,
        "idle_cpu_ratios": {
            f"{OURS}/{s}": ratio(idle_cpu[OURS], idle_cpu[s]) for s in stacks if s != OURS
        },
        "ceiling": ceilings[CEILING],
        "ceilings": ceilings,
        "scenarios": scenarios,
    }


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "packages": {name: metadata.version(name) for name in PACKAGES},
    }


# Two workers against one (bench.jobs_rate.Scaling), summarized as medians: jobs/s, the
# ratios, and every worker's CPU over the jobs (ms): one, two spread, two on one core.
SCALING_FIGURES = (
    "one_jobs_per_s",
    "two_jobs_per_s",
    "ratio",
    "two_one_core_jobs_per_s",
    "ratio_one_core",
    "one_cpu_ms_per_job",
    "two_cpu_ms_per_job",
    "two_one_core_cpu_ms_per_job",
)


def build(
    *,
    plan: dict[str, Any],
    started: dt.datetime,
    finished: dt.datetime,
    cells: list[Cell],
    idle: list[IdleCpu],
    worker_exits: list[int | None],
    stacks: dict[str, str],
    scaling: list[Scaling] | None = None,
    idle_costs: list[IdleCost] | None = None,
    sync: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole result, as the JSON file holds it (``sync``: the sync benchmark's, as
    :func:`bench.sync_report.as_json` gives it)."""
    summary = summarize(cells, idle)
    if scaling:
        summary["scaling"] = {
            name: median(getattr(s, name) for s in scaling) for name in SCALING_FIGURES
        } | {
            # How busy each core was (%): with the second worker on CPU 0, and with both on 1.
            "two_worker_core_busy_percent": median(s.two_cores_busy[0] for s in scaling),
            "two_other_core_busy_percent": median(s.two_cores_busy[1] for s in scaling),
            "two_one_core_worker_core_busy_percent": median(
                s.two_one_core_cores_busy[0] for s in scaling
            ),
            "two_one_core_other_core_busy_percent": median(
                s.two_one_core_cores_busy[1] for s in scaling
            ),
        }
    if idle_costs:
        summary["idle_cost"] = {
            name: median(getattr(c, name) for c in idle_costs)
            for name in ("busy_us", "gapped_us", "sleep_us", "penalty")
        }
    return {
        "benchmark": "compare",
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "plan": plan,
        "environment": environment(),
        "stacks": stacks,
        "summary": summary,
        "cells": [dataclasses.asdict(c) for c in cells],
        "idle": [dataclasses.asdict(i) for i in idle],
        "scaling": [
            {**dataclasses.asdict(s), "ratio": s.ratio, "ratio_one_core": s.ratio_one_core}
            for s in scaling or []
        ],
        "idle_cost": [{**dataclasses.asdict(c), "penalty": c.penalty} for c in idle_costs or []],
        "sync": sync,
        "worker_exits": worker_exits,
    }


def write(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, allow_nan=False) + "\n")


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _latency(load: dict[str, Any]) -> str:
    return f"{_num(load['p50_ms'], 1)} / {_num(load['p99_ms'], 1)}"


def _share(figures: dict[str, Any]) -> str:
    return f"{_num(figures['busy_percent'])} / {_num(figures['others_on_worker_core_percent'])}"


def table(result: dict[str, Any]) -> str:
    """The short markdown table: per scenario and stack, then the ratios, then idle CPU."""
    summary = result["summary"]
    plan = result["plan"]
    loads = [load_key(f) for f in (0.5, 0.8)]
    lines = [
        f"\n### gcal-jobs comparison ({plan['mode']}, medians of {plan['repeats']} "
        f"repeat(s), started {result['started_at'][:19]} UTC)\n",
        "| job | +ms | stack | jobs/s | busy / others % | CPU ms/job | peak RSS MiB | "
        + " | ".join(f"p50 / p99 ms @{k}" for k in loads)
        + " |",
        "|---|--:|---|--:|--:|--:|--:|" + "--:|" * len(loads),
    ]
    for entry in summary["scenarios"]:
        for n, (stack, figures) in enumerate(entry["stacks"].items()):
            head = f"| {entry['scenario']} | {entry['latency_ms']} |" if n == 0 else "| | |"
            lines.append(
                f"{head} {stack} | {_num(figures['jobs_per_s'])} | {_share(figures)} | "
                f"{_num(figures['cpu_ms_per_job'], 2)} | {_num(figures['peak_rss_mib'])} | "
                + " | ".join(_latency(figures["load"][k]) for k in loads)
                + " |"
            )
    for n, (name, ceiling) in enumerate(summary["ceilings"].items()):
        head = f"| {NOOP} | |" if n == 0 else "| | |"
        lines.append(
            f"{head} {name} | {_num(ceiling['jobs_per_s'])} | {_share(ceiling)} | "
            f"{_num(ceiling['cpu_ms_per_job'], 2)} | {_num(ceiling['peak_rss_mib'])} |"
            + " |"
            * len(loads)
        )
    pairs = list(summary["scenarios"][0]["ratios"]) if summary["scenarios"] else []
    # The ceilings have no latency.
    baselines = [p for p in pairs if p.removeprefix(f"{OURS}/") not in CEILINGS]
    lines += [
        "\nRatios ours/other (jobs/s: above 1 is better for ours; CPU and p99: below 1 is)\n",
        "| job | +ms | "
        + " | ".join(f"jobs/s {p}" for p in pairs)
        + " | "
        + " | ".join(f"CPU/job {p}" for p in pairs)
        + " | "
        + " | ".join(f"p99@80% {p}" for p in baselines)
        + " |",
        "|---|--:|" + "--:|" * (2 * len(pairs) + len(baselines)),
    ]
    for entry in summary["scenarios"]:
        r = entry["ratios"]
        cells = [_num(r[p]["jobs_per_s"], 2) for p in pairs]
        cells += [_num(r[p]["cpu_ms_per_job"], 2) for p in pairs]
        cells += [_num(r[p]["p99_ms@80%"], 2) for p in baselines]
        lines.append(f"| {entry['scenario']} | {entry['latency_ms']} | " + " | ".join(cells) + " |")
    lines += [
        "\nBoth cores during our open-loop runs (busy %, every process: worker core / the other "
        "core, which runs the emulator, Redis and the driver)\n",
        "| job | +ms | " + " | ".join(f"@{k}" for k in loads) + " |",
        "|---|--:|" + "--:|" * len(loads),
    ]
    for entry in summary["scenarios"]:
        ours = entry["stacks"][OURS]["load"]
        cores = [
            f"{_num(ours[k]['worker_core_busy_percent'])} / "
            f"{_num(ours[k]['other_core_busy_percent'])}"
            for k in loads
        ]
        lines.append(f"| {entry['scenario']} | {entry['latency_ms']} | " + " | ".join(cores) + " |")
    idle = ", ".join(f"{s} {_num(v, 2)}" for s, v in summary["idle_cpu_percent"].items())
    lines.append(f"\nIdle CPU, % of one core: {idle}")
    scaling = summary.get("scaling")
    if scaling:
        lines.append(
            f"Two worker processes against one (ours, get_events 10 at +50 ms): "
            f"{_num(scaling['one_jobs_per_s'])} jobs/s for one; the second on CPU 0 with the "
            f"emulator, Redis and the driver, {_num(scaling['two_jobs_per_s'])} jobs/s, "
            f"{_num(scaling['ratio'], 2)}x (cores busy "
            f"{_num(scaling['two_worker_core_busy_percent'])} / "
            f"{_num(scaling['two_other_core_busy_percent'])} %); both on the worker's core, "
            f"{_num(scaling['two_one_core_jobs_per_s'])} jobs/s, "
            f"{_num(scaling['ratio_one_core'], 2)}x (cores busy "
            f"{_num(scaling['two_one_core_worker_core_busy_percent'])} / "
            f"{_num(scaling['two_one_core_other_core_busy_percent'])} %); the workers' CPU "
            f"per job {_num(scaling['one_cpu_ms_per_job'], 2)}, "
            f"{_num(scaling['two_cpu_ms_per_job'], 2)} and "
            f"{_num(scaling['two_one_core_cpu_ms_per_job'], 2)} ms"
        )
    cost = summary.get("idle_cost")
    if cost:
        lines.append(
            f"The machine's idle cost (bench.idle_cost, on the worker's core): the same Python "
            f"work {_num(cost['busy_us'])} us of CPU a unit back to back, "
            f"{_num(cost['gapped_us'])} us with the process asleep {1000 * GAP_SECONDS:g} ms "
            f"after each unit (the sleep and wake alone {_num(cost['sleep_us'])} us): a unit "
            f"after an idle costs {_num(cost['penalty'], 2)}x"
        )
    lines.append(
        "busy: the worker's CPU over wall time at saturation; others: every other process's "
        "CPU on the worker's core meanwhile (a shared machine's noise).\n"
        "-: a percentile on a job unfinished when the run stopped waiting."
    )
    return "\n".join(lines)
