"""Every job the workers run, collected from the modules that declare them (:mod:`jobs.spec`).

A new job is a decorated function in one of these modules (or a new module added here);
nothing else lists jobs by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gcal.scopes import ScopeNeed, least_privilege
from jobs import account, calendars, events, sync
from jobs.spec import JobSpec, specs_in

_MODULES = (events, calendars, sync, account)

JOBS: Mapping[str, JobSpec[Any, Any]] = {
    spec.name: spec for module in _MODULES for spec in specs_in(module)
}


def needs_of(names: Iterable[str]) -> tuple[ScopeNeed, ...]:
    """What the named jobs need, each need once."""
    return tuple(dict.fromkeys(need for name in names for need in JOBS[name].needs))


def default_scopes() -> tuple[str, ...]:
    """The least-privilege scopes that serve every job."""
    return least_privilege(needs_of(JOBS))
