"""The worker's pool answers arq's first read of a job from the claim, once, and only with the
commands the claim ran (``worker.first_read``). No Redis: a handed read never reaches it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from arq.constants import abort_jobs_ss, job_key_prefix, retry_key_prefix
from redis.asyncio import ConnectionPool
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from worker.first_read import FirstRead, FirstReadPool, HandedReadPipeline, handed


def a_read(**changes: Any) -> FirstRead:
    fields: dict[str, Any] = {
        "job_id": "j1",
        "payload": b"{}",
        "job_try": 2,
        "aborted": False,
        "error": "",
        "with_abort": False,
    }
    return FirstRead(**{**fields, **changes})


def a_pool() -> FirstReadPool:
    # Nothing connects: the port is never dialled by these tests.
    return FirstReadPool(ConnectionPool(host="127.0.0.1", port=9))


async def arqs_first_read(pool: FirstReadPool, job_id: str, *, with_abort: bool) -> list[Any]:
    """What arq 0.28's run_job does first (arq/worker.py), to the letter."""
    async with pool.pipeline(transaction=True) as pipe:
        pipe.get(job_key_prefix + job_id)
        pipe.incr(retry_key_prefix + job_id)
        pipe.expire(retry_key_prefix + job_id, 88400)
        if with_abort:
            pipe.zrem(abort_jobs_ss, job_id)
        replies: list[Any] = await pipe.execute()
        return replies


async def in_task(read: FirstRead, body: Any) -> Any:
    return await asyncio.get_running_loop().create_task(body(), context=handed(read))


async def test_arqs_first_read_is_answered_from_the_claim() -> None:
    pool = a_pool()

    async def job() -> list[Any]:
        return await arqs_first_read(pool, "j1", with_abort=False)

    assert await in_task(a_read(), job) == [b"{}", 2, True]
    missing = a_read(payload=None, job_try=1)
    assert await in_task(missing, job) == [None, 1, True]


async def test_with_aborts_allowed_the_abort_mark_is_the_fourth_reply() -> None:
    pool = a_pool()

    async def job() -> list[Any]:
        return await arqs_first_read(pool, "j1", with_abort=True)

    assert await in_task(a_read(with_abort=True, aborted=True), job) == [b"{}", 2, True, 1]


async def test_only_the_first_transaction_of_the_task_is_answered() -> None:
    pool = a_pool()

    async def job() -> tuple[Pipeline, Pipeline, Pipeline]:
        return pool.pipeline(), pool.pipeline(transaction=False), pool.pipeline()

    first, unwrapped, later = await in_task(a_read(), job)
    assert isinstance(first, HandedReadPipeline)
    assert not isinstance(unwrapped, HandedReadPipeline)
    assert not isinstance(later, HandedReadPipeline)
    # Outside a task started with a read (the poll loop, other tasks): Redis as usual.
    assert not isinstance(pool.pipeline(), HandedReadPipeline)


async def test_other_commands_than_the_claims_are_refused() -> None:
    pool = a_pool()

    async def other_job() -> list[Any]:
        return await arqs_first_read(pool, "j2", with_abort=False)

    async def with_abort() -> list[Any]:
        return await arqs_first_read(pool, "j1", with_abort=True)

    for body in (other_job, with_abort):
        with pytest.raises(RuntimeError, match="not the one the claim made"):
            await in_task(a_read(), body)


async def test_an_error_in_redis_is_raised_as_redis_py_raises_it() -> None:
    pool = a_pool()
    wrong = "WRONGTYPE Operation against a key holding the wrong kind of value"

    async def job() -> list[Any]:
        return await arqs_first_read(pool, "j1", with_abort=False)

    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await in_task(a_read(error=wrong, payload=None), job)
