"""The sync benchmark still runs end to end in its smallest mode and writes a result file
with every figure: rounds without changes cost one Google request per calendar and announce
nothing, every change reached the stream, every process exited cleanly. How fast anything is
stays the benchmark's business, not a test's."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import sync_rate


def number(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


@pytest.mark.timeout(180)
async def test_sync_benchmark_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    path = await sync_rate.main(smoke=True, output=tmp_path / "sync.json")

    result = json.loads(path.read_text())
    plan = result["plan"]
    first = result["first_round"]
    assert first["google_requests"] == {
        "calendarList.list": plan["users"],
        "events.list": plan["users"],
    }
    assert first["announced"] == plan["users"] * plan["events"]
    assert len(result["rounds"]) == plan["rounds"]
    for round_ in result["rounds"]:
        assert round_["google_requests"] == {"events.list": plan["users"]}
        assert round_["requests_per_calendar"] == 1
        assert round_["announced"] == 0
        assert number(round_["cpu_ms_per_sync"])
    assert number(result["ceiling"]["cpu_ms_per_job"])
    assert all(number(ratio) for ratio in result["cpu_ratio_to_noop"])
    [synced, copies] = result["memory"]
    assert synced["events"] == plan["users"] * plan["events"]
    assert {synced["encoding"], copies["encoding"]} == {"hashtable", "listpack"}
    assert all(number(m["bytes_per_event"]) for m in result["memory"])
    push, polling = result["latencies"]
    assert len(push["seconds"]) == plan["push_changes"]
    assert len(polling["seconds"]) == plan["poll_changes"]
    assert all(number(s) for s in [*push["seconds"], *polling["seconds"]])
    assert result["worker_exits"]
    assert all(code == 0 for code in result["worker_exits"])
    assert result["auth_web_exits"] == [0]
