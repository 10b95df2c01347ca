"""What the worker tells operators about each job: one log line when it ends, one when it is
deferred, and the job metrics (:mod:`worker.metrics`).

    reports.finished(result, attempt=2, seconds=0.31)
    # INFO worker.reports job 4f2c get_events finished: ok in 0.310s (try 2)
    # {"message": "job 4f2c get_events finished: ...", "job_id": "4f2c", "job": "get_events",
    #  "result": "ok", "duration_s": 0.31, "try": 2, ...}               (GCAL_LOG_FORMAT=json)

The line carries the job id, the job name, the result (``ok`` or the error code), the duration
of the try that ended it and the try number, as fields of the record; never the arguments nor
the result's data. Its level says how it ended: ``ok`` INFO, an error WARNING, ``internal``
ERROR (the cause was logged just before, with the same job id, by whoever caught it).
"""

from __future__ import annotations

import logging

from gcal.keys import JOB_ID_RE
from jobs.registry import JOBS
from jobs.results import JobResult
from worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)

# The job label of a name no job is registered under (producers choose names: keep the
# label's values bounded).
UNKNOWN = "unknown"


def _shown_id(job_id: str) -> str:
    # A refused job's id may be anything a producer wrote (newlines included).
    return job_id if JOB_ID_RE.fullmatch(job_id) else "<invalid id>"


def _level(code: str) -> int:
    if code == "ok":
        return logging.INFO
    return logging.ERROR if code == "internal" else logging.WARNING


class JobReports:
    """Logs and counts the end (or deferral) of each job."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def finished(self, result: JobResult, *, attempt: int | None, seconds: float | None) -> None:
        """The job ended with ``result``; ``seconds`` of its last try (None: none ran)."""
        code = "ok" if result.ok or result.error is None else result.error.code
        job_id = _shown_id(result.job_id)
        took = f"{seconds:.3f}s" if seconds is not None else "-"
        log.log(
            _level(code),
            "job %s %s finished: %s in %s (try %s)",
            job_id,
            result.job,
            code,
            took,
            attempt if attempt is not None else "-",
            extra={
                "job_id": job_id,
                "job": result.job,
                "result": code,
                "duration_s": round(seconds, 6) if seconds is not None else None,
                "try": attempt,
            },
        )
        self.metrics.job_finished(result.job if result.job in JOBS else UNKNOWN, code, seconds)

    def deferred(
        self, job_id: str, job: str, *, reason: str, delay: float, attempt: int, seconds: float
    ) -> None:
        """The try ended with a deferral: the job runs again in ``delay`` seconds."""
        log.info(
            "job %s %s deferred %.1fs after %s (try %d)",
            job_id,
            job,
            delay,
            reason,
            attempt,
            extra={
                "job_id": job_id,
                "job": job,
                "result": "deferred",
                "reason": reason,
                "defer_s": round(delay, 3),
                "duration_s": round(seconds, 6),
                "try": attempt,
            },
        )
        self.metrics.job_deferred(job if job in JOBS else UNKNOWN, reason)
