"""The worker's Prometheus metrics, in a registry of the worker's own (no globals).

=============================================  =========  ==========================================
metric                                         type       labels
=============================================  =========  ==========================================
``gcal_worker_jobs_total``                     counter    ``job``, ``result`` (``ok`` or the error
                                                          code): jobs that ended with a result
``gcal_worker_job_duration_seconds``           histogram  ``job``: the try that ended with a result
``gcal_worker_job_deferrals_total``            counter    ``job``, ``reason`` (``rate_limited``,
                                                          ``upstream_unavailable``, ``throttled``:
                                                          our own limiter)
``gcal_google_requests_total``                 counter    ``method`` (``events.list``,
                                                          ``oauth.refresh``...), ``status`` (HTTP
                                                          status, or ``error``: no answer)
``gcal_google_request_duration_seconds``       histogram  ``method``
``gcal_token_refreshes_total``                 counter    ``result`` (``ok``, ``revoked``,
                                                          ``failed``)
``gcal_grant_revocations_total``               counter    ``origin`` (``google``: a refresh token
                                                          refused; ``service``: we revoked)
``gcal_queue_jobs``                            gauge      jobs in the queue: due, deferred, running
``gcal_queue_oldest_job_age_seconds``          gauge      how long the earliest-due job has been
                                                          due (0 when none is)
=============================================  =========  ==========================================

The counters count what this process did (each worker its own; Prometheus sums them). The
queue gauges are read from Redis when scraped (:meth:`WorkerMetrics.sample_queue`: ZCARD and
the lowest score of the queue, against Redis's clock), so every worker reports the same
queue; an aggregate takes ``max``, not ``sum``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gcal.observer import RefreshResult, RevocationOrigin

log = logging.getLogger(__name__)

# Seconds. Jobs: from a cached read to a page-following listing near the job timeout.
JOB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# Seconds. One request to Google: tens of milliseconds to the request timeout.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)


class QueueCollector(Collector):
    """The queue gauges, from the last :meth:`WorkerMetrics.sample_queue` (none if it failed)."""

    def __init__(self) -> None:
        self.sample: tuple[int, float] | None = None

    def collect(self) -> Iterable[Metric]:
        if self.sample is None:
            return []
        depth, age = self.sample
        return [
            GaugeMetricFamily(
                "gcal_queue_jobs",
                "Jobs in the queue: due, deferred to later, and running.",
                value=depth,
            ),
            GaugeMetricFamily(
                "gcal_queue_oldest_job_age_seconds",
                "Seconds the earliest-due job in the queue has been due (0 when none is).",
                value=age,
            ),
        ]


class WorkerMetrics:
    """Every metric of one worker process; also the core's
    :class:`~gcal.observer.GoogleObserver`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs = Counter(
            "gcal_worker_jobs",
            "Jobs that ended with a result, by job and result (ok or the error code).",
            ["job", "result"],
            registry=r,
        )
        self.job_duration = Histogram(
            "gcal_worker_job_duration_seconds",
            "Duration of the try that ended a job with a result.",
            ["job"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.deferrals = Counter(
            "gcal_worker_job_deferrals",
            "Job tries deferred to run again later, by job and reason.",
            ["job", "reason"],
            registry=r,
        )
        self.google_requests = Counter(
            "gcal_google_requests",
            "HTTP requests to Google (every attempt), by method and status (error: no answer).",
            ["method", "status"],
            registry=r,
        )
        self.google_latency = Histogram(
            "gcal_google_request_duration_seconds",
            "Time from sending a request to Google to reading its answer, by method.",
            ["method"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.refreshes = Counter(
            "gcal_token_refreshes",
            "Access-token refreshes, by result (ok, revoked, failed).",
            ["result"],
            registry=r,
        )
        self.revocations = Counter(
            "gcal_grant_revocations",
            "Grants that ended: google (a refresh token refused) or service (we revoked).",
            ["origin"],
            registry=r,
        )
        self.queue = QueueCollector()
        r.register(self.queue)

        # Each job looks children up four times; prometheus_client's ``labels`` checks its
        # arguments and takes a lock on every call. The label values are bounded (methods,
        # statuses, registered job names, results), so the children are looked up once.
        self._requests_by = functools.cache(self.google_requests.labels)
        self._latency_by = functools.cache(self.google_latency.labels)
        self._jobs_by = functools.cache(self.jobs.labels)
        self._duration_by = functools.cache(self.job_duration.labels)

    # The core's observer (gcal.observer) --------------------------------------------------------

    def request(self, method: str, status: str, seconds: float) -> None:
        self._requests_by(method, status).inc()
        self._latency_by(method).observe(seconds)

    def refresh(self, result: RefreshResult) -> None:
        self.refreshes.labels(result).inc()

    def revocation(self, origin: RevocationOrigin) -> None:
        self.revocations.labels(origin).inc()

    # Jobs -----------------------------------------------------------------------------------

    def job_finished(self, job: str, result: str, seconds: float | None) -> None:
        """A job ended with ``result``; ``seconds`` is its last try's, if one ran."""
        self._jobs_by(job, result).inc()
        if seconds is not None:
            self._duration_by(job).observe(seconds)

    def job_deferred(self, job: str, reason: str) -> None:
        self.deferrals.labels(job, reason).inc()

    # Exposition -----------------------------------------------------------------------------

    async def sample_queue(self, redis: Redis, queue: str) -> None:
        """Read the queue's size and earliest due time (Redis's clock) for the gauges."""
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.zcard(queue)
                pipe.zrange(queue, 0, 0, withscores=True)
                pipe.time()
                depth, first, (seconds, micros) = await pipe.execute()
        except (RedisError, OSError) as err:
            log.warning("metrics: queue not read (%s)", type(err).__name__)
            self.queue.sample = None
            return
        now_ms = seconds * 1000 + micros / 1000
        age = max(0.0, (now_ms - first[0][1]) / 1000) if first else 0.0
        self.queue.sample = (int(depth), age)

    def render(self) -> bytes:
        return generate_latest(self.registry)
