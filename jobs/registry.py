"""Every job the workers run: its name, argument and data models, and its function."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from jobs import account, calendars, contract, events
from jobs.deps import JobDeps, JobInfo

A = TypeVar("A", bound=BaseModel)
D = TypeVar("D", bound=BaseModel)


@dataclass(frozen=True)
class JobSpec(Generic[A, D]):
    name: str
    args: type[A]
    data: type[D]
    handler: Callable[[JobDeps, A, JobInfo], Awaitable[D]]


JOBS: tuple[JobSpec[Any, Any], ...] = (
    JobSpec("get_events", contract.GetEventsArgs, contract.GetEventsData, events.get_events),
    JobSpec(
        "create_event", contract.CreateEventArgs, contract.CreateEventData, events.create_event
    ),
    JobSpec(
        "update_event", contract.UpdateEventArgs, contract.UpdateEventData, events.update_event
    ),
    JobSpec(
        "delete_event", contract.DeleteEventArgs, contract.DeleteEventData, events.delete_event
    ),
    JobSpec(
        "list_calendars",
        contract.ListCalendarsArgs,
        contract.ListCalendarsData,
        calendars.list_calendars,
    ),
    JobSpec(
        "get_free_busy", contract.GetFreeBusyArgs, contract.GetFreeBusyData, calendars.get_free_busy
    ),
    JobSpec("disconnect", contract.DisconnectArgs, contract.DisconnectData, account.disconnect),
)
JOB_NAMES = frozenset(spec.name for spec in JOBS)
