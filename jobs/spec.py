"""How a job is declared: one decorator on its function states everything about it.

    @job(needs=[READ_EVENTS])
    async def get_events(s: Services, args: GetEventsArgs, run: JobRun) -> GetEventsData:
        \"\"\"Events of one calendar in a time window.\"\"\"
        ...

The job's name is the function's name; its argument and data models are the annotations of
``args`` and the return value; ``needs`` are the capabilities (OAuth scopes) it uses. The
worker's registrations, the JSON Schemas, the contract's job table and the default OAuth scopes
all derive from these declarations (:mod:`jobs.registry` lists the modules that hold them).

The worker runs a job through :meth:`JobSpec.run`: its needs are checked against the user's
grant before any request leaves (:mod:`gcal.scopes`), and a ``scope_missing`` always names
the scopes to ask the user for.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from redis.asyncio.client import Pipeline

from gcal.errors import ScopeMissing
from gcal.scopes import ScopeNeed, lacking, needs_applied
from gcal.services import Services
from jobs.results import JobResult

A = TypeVar("A", bound=BaseModel)
D = TypeVar("D", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class JobRun:
    """The running job: its id (the default idempotency key) and which try this is."""

    job_id: str
    attempt: int


Handler = Callable[[Services, A, JobRun], Awaitable[D]]
# Called once a job has its final result (never after a deferral), to queue on ``Pipeline``,
# the transaction that writes the result, what ends with the job: what it held is let go in
# the same step as its result is written, never one without the other.
Ending = Callable[[Services, A, JobRun, JobResult, Pipeline], None]


@dataclass(frozen=True)
class JobSpec(Generic[A, D]):
    """A declared job."""

    name: str
    args: type[A]
    data: type[D]
    handler: Handler[A, D]
    needs: tuple[ScopeNeed, ...]
    # A job the service schedules itself, thousands an hour: its completion is announced on
    # its own result channel only, not the notifications stream, and its result kept an hour.
    quiet: bool = False
    ended: Ending[A] | None = None

    async def run(self, s: Services, args: A, run: JobRun) -> D:
        """The job's handler, under its needs. Google's own 403 for a missing scope (the
        stored grant looked sufficient) names this job's needs' narrowest scopes too."""
        with needs_applied(self.needs):
            try:
                return await self.handler(s, args, run)
            except ScopeMissing as err:
                if err.missing_scopes or not self.needs:
                    raise
                raise lacking(self.needs, err.message) from err

    @property
    def summary(self) -> str:
        """The first line of the job function's docstring."""
        return (inspect.getdoc(self.handler) or "").split("\n", 1)[0]


def job(
    *,
    needs: Iterable[ScopeNeed] = (),
    quiet: bool = False,
    ended: Ending[Any] | None = None,
) -> Callable[[Handler[A, D]], JobSpec[A, D]]:
    """Declare the decorated coroutine function as a job (see the module docstring).
    ``ended`` queues, with the job's final result, the release of what it held (:data:`Ending`)."""

    def declare(handler: Handler[A, D]) -> JobSpec[A, D]:
        hints = typing.get_type_hints(handler)
        args, data = hints.get("args"), hints.get("return")
        if not (
            inspect.iscoroutinefunction(handler)
            and isinstance(args, type)
            and issubclass(args, BaseModel)
            and isinstance(data, type)
            and issubclass(data, BaseModel)
        ):
            raise TypeError(
                f"{handler.__name__}: a job is `async def name(s: Services, args: <Model>, "
                "run: JobRun) -> <Model>`"
            )
        if not inspect.getdoc(handler):
            raise TypeError(f"{handler.__name__}: a job's docstring says what it does")
        return JobSpec(
            handler.__name__,
            typing.cast("type[A]", args),
            typing.cast("type[D]", data),
            handler,
            tuple(needs),
            quiet,
            ended,
        )

    return declare


def specs_in(module: Any) -> list[JobSpec[Any, Any]]:
    """The jobs declared in ``module``, in source order."""
    return [value for value in vars(module).values() if isinstance(value, JobSpec)]
