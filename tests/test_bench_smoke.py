"""The jobs benchmark still runs end to end (its smallest mode): every scenario finishes jobs
and every worker process exits cleanly. Timings are the benchmark's business, not a test's."""

from __future__ import annotations

from bench import jobs_rate


async def test_jobs_benchmark_smoke_run() -> None:
    result = await jobs_rate.main(smoke=True)

    rates = [result.baseline, *result.scenarios, *(d.loaded for d in result.poll_delays)]
    assert len(result.scenarios) == len(jobs_rate.PAGE_SIZES) * len(jobs_rate.LATENCIES_MS)
    assert all(rate.jobs > 0 for rate in rates)
    assert len(result.poll_delays) == len(jobs_rate.POLL_DELAYS)
    assert all(len(d.latencies_ms) > 0 for d in result.poll_delays)
    assert result.worker_exits
    assert all(code == 0 for code in result.worker_exits)
