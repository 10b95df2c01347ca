"""The benchmarks' ceiling, arq's no-op job, succeeds: a job that failed would measure arq's
error path (an exception, its traceback logged at ERROR) instead of arq's own cost per job,
and every ratio to the ceiling would flatter the product's worker."""

from __future__ import annotations

import json

from arq.connections import ArqRedis
from arq.constants import result_key_prefix
from redis.asyncio import Redis

from bench.jobs_env import JobsEnv
from bench.worker_child import NOOP_JOB, WorkerProcess
from jobs import wire
from tests.pipeline import wait_until_async


async def test_the_no_op_job_of_the_ceiling_succeeds(redis: Redis, redis_url: str) -> None:
    env = JobsEnv("http://127.0.0.1:9", redis, redis_url, accounts=0)  # Google is not asked
    arq = ArqRedis(
        connection_pool=redis.connection_pool,
        job_serializer=wire.dumps,
        job_deserializer=wire.loads,
        default_queue_name=env.keys.queue,
    )
    job_id = env.job_id()
    try:
        async with WorkerProcess("noop", env.settings_json):
            await arq.enqueue_job(NOOP_JOB, _job_id=job_id)

            async def finished() -> bool:
                return bool(await redis.exists(result_key_prefix + job_id))

            await wait_until_async(finished)
        result = json.loads(await redis.get(result_key_prefix + job_id))
        assert result["s"] is True, result["r"]
    finally:
        await env.cleanup()
