"""The fuzz strategies' claims hold, checked in-process against the product's own checks.

What ``tests/test_fuzz_queue.py`` asserts of a real worker rests on what each generated entry
says must follow; here those claims meet the argument models and ``jobs.wire.loads_job``
directly, many examples a second. A claim that fails here is either a wrong strategy or a
product bug, found without a worker process.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from jobs import wire
from jobs.registry import JOBS
from tests.argument_strategies import VALID_ARGUMENTS, Args, job_arguments
from tests.queue_strategies import (
    JOB_MAX_TRIES,
    NONCE_BYTES,
    Entry,
    JobIdShape,
    id_category,
    job_ids,
    queue_entries,
)

# Generated payloads can be large (a megabyte) and deep: that is the point.
_SLOW_DATA = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


def _checked(job: str, named: dict[str, Any]) -> bool:
    """Whether the worker's argument check (``worker/runner.py``) accepts ``named``."""
    try:
        JOBS[job].args.model_validate_json(wire.dumps(named))
    except ValidationError:
        return False
    return True


def predicted(payload: bytes) -> str:
    """The result category the worker's checks give a payload stored under a valid id."""
    try:
        job = wire.loads_job(payload, max_try=JOB_MAX_TRIES)  # as the worker calls it
    except Exception:  # arq records any deserializer failure as the job's failure
        return "not_a_job"
    if job["f"] not in JOBS:
        return "unknown_job"
    arguments: wire.Arguments = job["k"][wire.ARGUMENTS]
    if arguments.positional:
        return "ran"  # refused by the runner, with no fields: as a run that failed
    return "ran" if _checked(job["f"], arguments.named) else "bad_args"


def test_every_declared_job_has_a_strategy_for_valid_arguments() -> None:
    # A new job's valid arguments are the fuzz's starting point: without them, it is never sent.
    assert set(VALID_ARGUMENTS) == set(JOBS), "add the job to VALID_ARGUMENTS"


@settings(max_examples=300, deadline=None, database=None)
@given(job_arguments())
def test_argument_objects_are_what_they_claim(args: Args) -> None:
    accepted = _checked(args.job, args.value)
    if args.valid is not None:
        assert accepted == args.valid, args.mutation


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=_SLOW_DATA)
@given(queue_entries())
def test_payloads_meet_the_outcome_they_claim(entry: Entry) -> None:
    if entry.redis_type != "string":
        return
    assert predicted(entry.payload) in entry.expect.allowed, entry.shape


@settings(max_examples=200, deadline=None, database=None)
@given(job_ids)
def test_job_id_shapes_fall_where_the_contract_says(shape: JobIdShape) -> None:
    category = id_category(shape.render(b"n" * NONCE_BYTES))
    expected = {"valid": None, "empty": "not_a_job", "too_long": "not_a_job"}
    expected |= {"not_utf8": "dead_letter", "colon": "not_a_job", "glob": "not_a_job"}
    expected |= {"space": "not_a_job", "odd_bytes": "not_a_job", "unicode": "not_a_job"}
    if shape.kind in expected:
        assert category == expected[shape.kind]
