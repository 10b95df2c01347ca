"""The comparison benchmark (ours against Celery and the arq no-op ceiling) still runs end to
end in its seconds-long smoke mode and writes a result file with every figure in it. How fast
anything is stays the benchmark's business, not a test's."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import compare, compare_report
from bench.stacks import celery_name

FIGURES = (
    "jobs_per_s",
    "cpu_ms_per_job",
    "peak_rss_mib",
    "busy_percent",
    "others_on_worker_core_percent",
)
LATENCIES = ("p50_ms", "p99_ms")
CORES = ("worker_core_busy_percent", "other_core_busy_percent")


def number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value >= 0


@pytest.mark.timeout(360)
async def test_comparison_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    path = await compare.main(smoke=True, output=tmp_path / "compare.json")

    result = json.loads(path.read_text())
    summary = result["summary"]
    baselines = [celery_name(m) for m in compare.PREFETCH_MULTIPLIERS]
    stacks = [compare_report.OURS, *baselines]
    assert summary["stacks"] == [*stacks, *compare_report.CEILINGS]
    expected = {(s.name, ms) for s in compare.SCENARIOS for ms in compare.LATENCIES_MS}
    assert {(e["scenario"], e["latency_ms"]) for e in summary["scenarios"]} == expected
    loads = [compare_report.load_key(f) for f in compare.LOAD_FRACTIONS]
    for entry in summary["scenarios"]:
        assert set(entry["stacks"]) == set(stacks)
        for figures in entry["stacks"].values():
            assert all(number(figures[key]) for key in FIGURES), figures
            for load in loads:
                figures_at = figures["load"][load]
                assert all(number(figures_at[key]) for key in [*LATENCIES, *CORES]), figures
        ratios = entry["ratios"]
        assert set(ratios) == {f"ours/{b}" for b in [*baselines, *compare_report.CEILINGS]}
        assert all(number(value) for pair in ratios.values() for value in pair.values()), ratios
    assert set(summary["ceilings"]) == set(compare_report.CEILINGS)
    for ceiling in summary["ceilings"].values():
        assert all(number(ceiling[key]) for key in FIGURES), ceiling
    assert set(summary["idle_cpu_percent"]) == set(summary["stacks"])
    assert all(number(v) for v in summary["idle_cpu_percent"].values())
    assert set(result["stacks"]) == set(summary["stacks"])
    assert result["worker_exits"]
    assert all(code == 0 for code in result["worker_exits"])
    # The machine's idle cost on the worker's core, two workers against one, and the sync
    # benchmark's no-change round, in the same run.
    cost = summary["idle_cost"]
    assert set(cost) == {"busy_us", "gapped_us", "sleep_us", "penalty"}
    assert all(number(v) and v > 0 for v in cost.values()), cost
    scaling = summary["scaling"]
    assert all(number(v) for v in scaling.values()), scaling
    workers_cpu = ("one_cpu_ms_per_job", "two_cpu_ms_per_job", "two_one_core_cpu_ms_per_job")
    assert all(scaling[key] > 0 for key in workers_cpu), scaling
    sync = result["sync"]
    assert sync["rounds"], sync
    for sync_round in sync["rounds"]:
        assert sync_round["requests_per_calendar"] == 1.0, sync_round
        assert number(sync_round["cpu_ms_per_sync"]), sync_round
    assert all(code == 0 for code in sync["worker_exits"])
