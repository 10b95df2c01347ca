"""Every job the workers run, collected from the modules that declare them (:mod:`jobs.spec`),
and what follows from them: the scopes a deployment asks users for by default.

A new job is a decorated function in one of these modules (or a new module added here);
nothing else lists jobs by hand.

    settings = resolved(Settings())   # at a process edge: GCAL_SCOPES unset -> the jobs' own
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from gcal.scopes import ScopeNeed, least_privilege, unmet
from gcal.settings import Settings
from jobs import account, calendars, events, sync
from jobs.spec import JobSpec, specs_in

log = logging.getLogger(__name__)

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


def unserved(scopes: Iterable[str]) -> list[str]:
    """The jobs a grant of ``scopes`` cannot serve."""
    granted = frozenset(scopes)
    return [name for name, spec in JOBS.items() if unmet(spec.needs, granted)]


def resolved(settings: Settings) -> Settings:
    """``settings`` with its scopes filled in: unset means :func:`default_scopes`. Configured
    scopes that leave jobs unserved are allowed (a deployment may choose to), and logged."""
    if settings.scopes is None:
        return settings.model_copy(update={"scopes": default_scopes()})
    left_out = unserved(settings.scopes)
    if left_out:
        log.warning(
            "GCAL_SCOPES serves no job of: %s; they will answer scope_missing",
            ", ".join(left_out),
        )
    return settings
