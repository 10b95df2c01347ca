"""Fuzz: generated queue entries against one real ``python -m worker`` (issue 8).

Each hypothesis example is a whole batch of queue entries (``tests/queue_strategies.py``: ids,
payloads and arguments for every job, valid and broken), put in Redis with raw commands as any
producer could. The test then polls Redis, with a deadline, until every entry has its outcome:
a result at ``<p>:result:<id>``, or for an id that is not UTF-8 an entry in
``<p>:dead-letters``. Every result must be a :class:`~jobs.results.JobResult` with a known
error code, in a category the contract allows for that entry (never ``internal``); the worker
must still be running and serve a good job.

Why ``@given`` over whole batches: a worker process takes a second or two to start, so all
examples share one, started by the ``fuzz`` fixture. Not resetting that fixture between
examples is the point, not an accident (hence the suppressed ``function_scoped_fixture``
health check): the worker must survive everything sent to it so far. Should it stop anyway,
the example fails, and the next one (hypothesis replays a failing example) starts a new worker
and counts the restart. Failing batches are not shrunk (each example is seconds of real work);
the failure names every entry that went wrong, with its shape and the worker's log records.

The CI run is 10 derandomized batches (about 300 entries, reproducible, ~10 s). The big run
raises the count and draws a fresh random seed; its counts are logged when the worker stops
(80 batches are about 2,400 entries across all jobs, under a minute)::

    GCAL_FUZZ_BATCHES=80 ./dev test tests/test_fuzz_queue.py -o log_cli=true --log-cli-level=INFO

Regressions are not kept in a hypothesis database (``database=None``): every shape that failed
once is an explicit case in ``tests/hostile_payloads.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from gcal.errors import ERROR_CODES
from jobs.registry import JOBS
from jobs.results import JobResult
from tests.argument_strategies import CALENDAR_DATA, LINKED_EMAIL, LINKED_USER
from tests.harness import Emulator
from tests.pipeline import Pipeline, WorkerProcess, pipeline
from tests.queue_strategies import Entry, queue_entries

log = logging.getLogger(__name__)

CI_BATCHES = 10
BATCHES = int(os.environ.get("GCAL_FUZZ_BATCHES", CI_BATCHES))
BATCH_SIZE = (20, 40)
# Every entry of a batch has its outcome within this time, or the batch fails.
BATCH_SECONDS = 60
# Linked to a different emulator account than the fuzzed user, whom a fuzzed disconnect may
# unlink: the probe job after each batch must succeed whatever the batch did.
PROBE_USER = "fuzz-probe-user"
PROBE_EMAIL = "probe@example.com"
UNKNOWN = "<unknown>"


class DrainedWorker:
    """A ``WorkerProcess`` (whose log is read as it is written) stopped with SIGTERM."""

    def __init__(self, process: WorkerProcess) -> None:
        self.process = process

    async def start(self) -> DrainedWorker:
        await self.process.start()
        return self

    @property
    def log(self) -> bytes:
        return self.process.log

    @property
    def running(self) -> bool:
        return self.process.running

    async def stop(self) -> int:
        """SIGTERM, then the exit code (killed if it does not exit within 30 s)."""
        if self.process.running:
            self.process.signal(signal.SIGTERM)
        code, _ = await self.process.wait(30)
        return code


@dataclass
class Tally:
    """What the whole run sent and got, for the closing note."""

    started: float = field(default_factory=time.monotonic)
    batches: int = 0
    payloads: Counter[str] = field(default_factory=Counter)  # by job name
    outcomes: Counter[str] = field(default_factory=Counter)  # by code, "ok", "dead_letter"
    by_job: Counter[str] = field(default_factory=Counter)  # "job outcome"
    shapes: Counter[str] = field(default_factory=Counter)
    ids: Counter[str] = field(default_factory=Counter)  # by JobIdShape.kind
    restarts: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "payloads": sum(self.payloads.values()),
            "payloads_by_job": dict(sorted(self.payloads.items())),
            "outcomes": dict(self.outcomes.most_common()),
            "dead_letters": self.outcomes["dead_letter"],
            "worker_restarts": self.restarts,
            "by_job_and_outcome": dict(sorted(self.by_job.items())),
            "shapes": dict(sorted(self.shapes.items())),
            "ids": dict(sorted(self.ids.items())),
            "seconds": round(time.monotonic() - self.started, 1),
        }


@dataclass
class FuzzRun:
    pipe: Pipeline
    worker: DrainedWorker
    tally: Tally
    nonces: Iterator[bytes]


def _nonces() -> Iterator[bytes]:
    """Unique per run and per entry: fresh ids, so no entry meets an earlier result."""
    run = os.urandom(4).hex()
    for n in range(10**7):
        yield f"fz{run}{n:06d}".encode()


@pytest.fixture
async def fuzz(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[FuzzRun]:
    # The fuzz is about what producers send, not about quotas (tests/test_quota_pipeline.py):
    # without limits, thousands of jobs never wait minutes for a rate-limit window.
    async with pipeline(
        emulator, redis, redis_prefix, quota_user_per_window=0, quota_project_per_window=0
    ) as pipe:
        await pipe.link(LINKED_USER, LINKED_EMAIL)
        await pipe.link(PROBE_USER, PROBE_EMAIL)
        worker = await DrainedWorker(WorkerProcess(pipe.settings)).start()
        run = FuzzRun(pipe, worker, Tally(), _nonces())
        try:
            yield run
        finally:
            code = await run.worker.stop()
            log.info("fuzz run: %s", json.dumps(run.tally.summary()))
    text = run.worker.log.decode(errors="replace")
    assert code == 0, text[-5000:]
    assert run.tally.restarts == 0
    # The worker's log never prints arguments (users' calendar data) nor secrets.
    secrets = [pipe.settings.client_secret.get_secret_value()]
    secrets += [key.get_secret_value() for key in pipe.settings.token_keys]
    for secret in (CALENDAR_DATA, *secrets):
        leaks = [line for line in text.splitlines() if secret in line]
        assert leaks == [], "\n".join(leaks[:5])


def _category(result: JobResult) -> str:
    """The contract's category of a result (see ``tests/queue_strategies.py``)."""
    code = result.error.code if result.error else None
    if code == "internal":
        return "internal"
    if result.job == UNKNOWN:
        return "not_a_job" if code == "invalid_request" else f"unknown_job_with:{code}"
    if result.job not in JOBS:
        return "unknown_job" if code == "invalid_request" else f"unknown_job_with:{code}"
    if code == "invalid_request" and result.error and result.error.fields:
        return "bad_args"
    return "ran"


# How a payload is stored as another Redis type than arq's string (the command, what precedes
# the payload).
_OTHER_TYPES = {
    "hash": ("HSET", b"f"),
    "list": ("RPUSH",),
    "set": ("SADD",),
    "zset": ("ZADD", b"1"),
}


async def _put(pipe: Pipeline, batch: list[tuple[bytes, Entry]]) -> None:
    """Enqueue with raw commands, as any producer could (one round trip for the batch)."""
    queue, now = pipe.keys.queue, int(time.time() * 1000)
    async with pipe.redis.pipeline(transaction=False) as p:
        for job_id, entry in batch:
            key = b"arq:job:" + job_id
            p.delete(key)
            if entry.redis_type == "string":
                p.set(key, entry.payload, px=600_000)
            elif entry.redis_type in _OTHER_TYPES:
                command, *before = _OTHER_TYPES[entry.redis_type]
                p.execute_command(command, key, *before, entry.payload)
            p.zadd(queue, {job_id: now})
        await p.execute()


def _result_key(pipe: Pipeline, job_id: bytes) -> bytes:
    return pipe.keys.result("").encode() + job_id


async def _outcomes(run: FuzzRun, batch: list[tuple[bytes, Entry]]) -> dict[bytes, JobResult | str]:
    """Poll Redis until every entry has its outcome (a result, or ``"dead_letter"``) and the
    queue is empty; fail if the worker stops or the deadline passes."""
    pipe = run.pipe
    found: dict[bytes, JobResult | str] = {}
    letters: set[bytes] = set()
    last_letter = b"-"
    async with asyncio.timeout(BATCH_SECONDS):
        while True:
            named = [job_id for job_id, entry in batch if job_id not in found]
            if named:
                values = await pipe.redis.mget([_result_key(pipe, i) for i in named])
                for job_id, raw in zip(named, values, strict=True):
                    if raw is not None:
                        found[job_id] = JobResult.model_validate_json(raw)
            for entry_id, fields in await pipe.redis.xrange(pipe.keys.dead_letters, last_letter):
                letters.add(fields[b"job_id_hex"])
                last_letter = b"(" + entry_id
            for job_id in named:
                if job_id not in found and job_id.hex()[:2048].encode() in letters:
                    found[job_id] = "dead_letter"
            if len(found) == len(batch) and not await pipe.redis.zcard(pipe.keys.queue):
                return found
            assert run.worker.running, "the worker stopped"
            # The outcomes are written by another process: poll them.
            await asyncio.sleep(0.05)


def _log_records(worker: DrainedWorker, job_ids: list[bytes]) -> str:
    """The worker's log records (tracebacks included) that name one of ``job_ids``."""
    names = [job_id.decode(errors="replace") for job_id in job_ids]
    records = re.split(
        r"\n(?=(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) )", worker.log.decode(errors="replace")
    )
    return "\n".join(r for r in records if any(name in r for name in names))[-8000:]


def _check(job_id: bytes, entry: Entry, outcome: JobResult | str) -> str | None:
    """What is wrong with ``outcome`` for ``entry``, or None."""
    want = entry.expected_for(job_id)
    if isinstance(outcome, str):
        return None if outcome in want.allowed else f"dead-lettered, expected {set(want.allowed)}"
    code = outcome.error.code if outcome.error else "ok"
    got = _category(outcome)
    problems = []
    if code != "ok" and code not in ERROR_CODES:
        problems.append(f"unknown code {code}")
    if got not in want.allowed:
        problems.append(f"{got} not in {sorted(want.allowed)}")
    if want.code and code != want.code:
        problems.append(f"code {code}, expected {want.code}")
    if got in ("bad_args", "ran", "unknown_job") and want.job and outcome.job != want.job:
        problems.append(f"job {outcome.job!r}, expected {want.job!r}")
    if outcome.job_id != job_id.decode():
        problems.append("result names another job id")
    if not problems:
        return None
    message = outcome.error.message if outcome.error else ""
    return f"{'; '.join(problems)} (code {code}, job {outcome.job!r}: {message})"


@pytest.mark.timeout(120 + BATCHES * 30)
@settings(
    max_examples=BATCHES,
    # No shrinking: every example costs a second of real work, and a failing batch already
    # names each entry that went wrong, with its shape.
    phases=[Phase.explicit, Phase.generate],
    # CI replays the same few batches; a big run explores with a fresh seed.
    derandomize=BATCHES <= CI_BATCHES,
    print_blob=True,  # a failing big run prints how to replay its example
    database=None,
    deadline=None,
    # One worker for all examples (see the module docstring); batches are large on purpose.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
@given(batch=st.lists(queue_entries(), min_size=BATCH_SIZE[0], max_size=BATCH_SIZE[1]))
async def test_no_generated_entry_stops_the_worker_and_every_nameable_job_is_answered(
    fuzz: FuzzRun, batch: list[Entry]
) -> None:
    pipe, tally = fuzz.pipe, fuzz.tally
    if not fuzz.worker.running:  # an earlier example stopped it, and failed for it
        tally.restarts += 1
        await fuzz.worker.stop()
        fuzz.worker = await DrainedWorker(WorkerProcess(pipe.settings)).start()
    entries: dict[bytes, Entry] = {}
    for entry in batch:
        job_id = entry.job_id.render(next(fuzz.nonces))
        entries.setdefault(job_id, entry)  # only the empty id can repeat
    pending = list(entries.items())
    # The empty id is the one id a run reuses: clear what an earlier batch left at its key.
    await pipe.redis.delete(_result_key(pipe, b""))
    await _put(pipe, pending)
    outcomes = await _outcomes(fuzz, pending)

    problems, failed = [], []
    for job_id, entry in pending:
        outcome = outcomes[job_id]
        code = (
            outcome if isinstance(outcome, str) else outcome.error.code if outcome.error else "ok"
        )
        tally.payloads[entry.job] += 1
        tally.outcomes[code] += 1
        tally.by_job[f"{entry.job} {code}"] += 1
        tally.shapes[entry.shape.split(":")[0]] += 1
        tally.ids[entry.job_id.kind] += 1
        problem = _check(job_id, entry, outcome)
        if problem:
            problems.append(f"{entry.shape} id={job_id[:40]!r}: {problem}")
            failed.append(job_id)
    tally.batches += 1
    assert problems == [], "\n".join([*problems, _log_records(fuzz.worker, failed)])
    leftovers = await pipe.redis.exists(*(b"arq:job:" + job_id for job_id, _ in pending))
    assert leftovers == 0
    assert fuzz.worker.running, "the worker stopped"
    assert (await pipe.run("list_calendars", {"user_id": PROBE_USER}, timeout=20)).ok
    # A fuzzed disconnect may have unlinked the fuzzed user: link again for the next batch.
    await pipe.link(LINKED_USER, LINKED_EMAIL)
