"""What every job answers: a result envelope with either data or a typed error.

    {"job_id": "...", "job": "create_event", "ok": true, "data": {...},
     "finished_at": "2026-11-24T18:00:00Z"}
    {"job_id": "...", "job": "create_event", "ok": false,
     "error": {"code": "rate_limited", "message": "...", "retryable": true, "retry_after": 30}}

``error.code`` is one of the stable codes of :mod:`gcal.errors` (derived from its classes;
``invalid_request`` from argument validation carries ``fields``). The result is written to its
result key *before* its :class:`~gcal.notifications.JobCompleted` notification is published.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gcal.errors import ErrorCode, GcalError
from gcal.keys import RESULT_TTL_SECONDS, RedisKeys
from gcal.notifications import JobCompleted, Notifier


def _encodable(value: object) -> object:
    # A lone surrogate (valid in JSON text, not in UTF-8) must not stop a result being written.
    return value.encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else value


Text = Annotated[str, BeforeValidator(_encodable)]


class FieldError(BaseModel):
    """One invalid argument: where it is (dotted path) and what is wrong."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: Text
    message: Text


class JobError(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    code: ErrorCode
    message: Text
    retryable: bool
    retry_after: float | None = Field(default=None, description="Seconds to wait before retrying.")
    fields: list[FieldError] | None = Field(
        default=None, description="With invalid_request: the arguments that are wrong."
    )
    missing_scopes: list[Text] | None = Field(
        default=None,
        description="With scope_missing: the scopes to ask the user for (link again with "
        "them: /auth/url/{user_id}?scope=...).",
    )

    @classmethod
    def from_error(cls, err: GcalError, fields: list[FieldError] | None = None) -> JobError:
        return cls.model_validate({**err.as_dict(), "fields": fields})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JobResult(BaseModel):
    """The envelope at ``<prefix>:result:<job_id>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: Text
    job: Text
    ok: bool
    data: dict[str, Any] | None = Field(
        default=None,
        description="With ok: the job's answer, shaped per job (see the job's schema).",
    )
    error: JobError | None = None
    finished_at: dt.datetime = Field(default_factory=_now)

    @classmethod
    def success(cls, job_id: str, job: str, data: BaseModel) -> JobResult:
        """A success whose ``data`` is the job's data model's fields as they are: validated
        inputs and Google's output, plain JSON values, encoded once, by :meth:`to_json`
        (a page of 250 events is neither copied nor checked again)."""
        return cls.model_construct(
            job_id=job_id, job=job, ok=True, data=dict(data), error=None, finished_at=_now()
        )

    @classmethod
    def failure(cls, job_id: str, job: str, error: JobError) -> JobResult:
        return cls(job_id=job_id, job=job, ok=False, error=error)

    def to_json(self) -> bytes:
        """The envelope as stored: absent fields left out, ``null`` inside ``data`` kept."""
        out: dict[str, Any] = {"job_id": self.job_id, "job": self.job, "ok": self.ok}
        if self.data is not None:
            out["data"] = self.data
        if self.error is not None:
            out["error"] = self.error.model_dump(mode="json", exclude_none=True)
        out["finished_at"] = self.finished_at
        try:
            return orjson.dumps(out, default=_nested_model, option=orjson.OPT_UTC_Z)
        except (TypeError, orjson.JSONEncodeError):
            # Text orjson will not encode (a lone surrogate): validation makes it UTF-8 safe.
            safe = JobResult.model_validate(self.model_dump())
            return safe.model_dump_json(exclude_none=True).encode()


def _nested_model(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# How long the result of a job the service schedules itself (a quiet job) stays readable.
QUIET_RESULT_TTL_SECONDS = 3600


async def record(
    redis: Redis, keys: RedisKeys, result: JobResult, notifier: Notifier, *, quiet: bool = False
) -> None:
    """Write ``result`` to its key, then announce it (:func:`stage`), in one MULTI/EXEC."""
    async with redis.pipeline(transaction=True) as pipe:
        stage(pipe, keys, result, notifier, quiet=quiet)
        await pipe.execute()


def stage(
    pipe: Pipeline, keys: RedisKeys, result: JobResult, notifier: Notifier, *, quiet: bool = False
) -> None:
    """Queue on ``pipe`` (a transaction the caller runs) the writes that end a job: its
    result at its key, then its announcement on the job's own channel (for a producer
    awaiting it), on the notifications channel and in the durable stream; a ``quiet`` job's
    only on its own channel, its result kept an hour.

    The SET runs before the PUBLISHes, so whoever hears the notification finds the result;
    and a crash cannot leave a notification without its result.
    """
    result_key = keys.result(result.job_id)
    note = JobCompleted(
        job_id=result.job_id,
        job=result.job,
        ok=result.ok,
        error_code=result.error.code if result.error else None,
        result_key=result_key,
    )
    ttl = QUIET_RESULT_TTL_SECONDS if quiet else RESULT_TTL_SECONDS
    pipe.set(result_key, result.to_json(), ex=ttl)
    notifier.stage(pipe, note, channels=[keys.result_channel(result.job_id)], broadcast=not quiet)
