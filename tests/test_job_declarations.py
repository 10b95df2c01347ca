"""Jobs are declared once (``@job``); the registry, scopes and worker registrations follow."""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from pydantic import BaseModel

import jobs
from gcal import scopes
from gcal.scopes import READ_CALENDAR_LIST, READ_EVENTS, READ_FREE_BUSY, WRITE_EVENTS
from gcal.services import Services
from jobs.arguments import JobArgs
from jobs.registry import JOBS, default_scopes
from jobs.spec import JobRun, job, specs_in
from tests.harness import Emulator
from tests.pipeline import job_settings
from worker.factory import create_worker


class PingArgs(JobArgs):
    pass


class PingData(BaseModel):
    pong: bool


def test_a_declaration_states_name_models_and_needs() -> None:
    @job(needs=[READ_EVENTS])
    async def ping(s: Services, args: PingArgs, run: JobRun) -> PingData:
        """Answer at once."""
        return PingData(pong=True)

    assert (ping.name, ping.args, ping.data, ping.needs) == (
        "ping",
        PingArgs,
        PingData,
        (READ_EVENTS,),
    )
    assert ping.summary == "Answer at once."


def test_a_job_without_models_or_docstring_is_refused() -> None:
    with pytest.raises(TypeError, match="a job is"):

        @job()  # type: ignore[type-var]
        async def untyped(s: Services, args: dict[str, str], run: JobRun) -> dict[str, str]:
            """No models."""
            return {}

    with pytest.raises(TypeError, match="docstring"):

        @job()
        async def silent(s: Services, args: PingArgs, run: JobRun) -> PingData:
            return PingData(pong=True)


def test_the_registry_holds_every_job_declared_anywhere_in_jobs_under_its_function_name() -> None:
    # A job declared in a module the registry does not list would never run: find them all.
    declared = {
        spec.name: spec
        for info in pkgutil.iter_modules(jobs.__path__, "jobs.")
        for spec in specs_in(importlib.import_module(info.name))
    }
    assert {"get_events", "create_event", "sync_calendar", "disconnect"} <= set(declared)
    assert set(JOBS) == set(declared), "add the module to jobs.registry._MODULES"
    assert all(spec.handler.__name__ == name for name, spec in JOBS.items())


def test_the_worker_registers_exactly_the_declared_jobs(emulator: Emulator) -> None:
    worker = create_worker(job_settings(emulator, "unused"), handle_signals=False)
    assert set(worker.functions) == set(JOBS)


def test_least_privilege_prefers_narrow_scopes_and_drops_covered_ones() -> None:
    assert scopes.least_privilege([READ_EVENTS]) == (scopes.EVENTS_READONLY,)
    # Writing events also reads them: the read-only scope is redundant.
    assert scopes.least_privilege([READ_EVENTS, WRITE_EVENTS]) == (scopes.EVENTS,)
    assert default_scopes() == tuple(
        sorted({scopes.EVENTS, scopes.CALENDAR_LIST_READONLY, scopes.FREEBUSY})
    )  # the sync jobs need nothing more than the other jobs do
    assert all(n.met_by([scopes.CALENDAR]) for n in (READ_EVENTS, WRITE_EVENTS, READ_FREE_BUSY))
    assert scopes.unmet([READ_CALENDAR_LIST, READ_EVENTS], [scopes.EVENTS]) == [READ_CALENDAR_LIST]
