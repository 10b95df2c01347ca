"""The retry budget: how many failed requests to Google one job may absorb, all told.

A failed request to Google (5xx, a timeout, a broken body, a 429) is retried by one of two
layers, each with its own policy: inside the call (connection errors and 5xx, at most
:data:`IN_CALL_ATTEMPTS` attempts) or across time (the worker defers the job and runs
it again). Every such retry spends one unit of the job's budget, whichever layer makes it, so
the layers never multiply: with a budget of ``n`` a job sends at most ``n`` requests more than
a failure-free run would. (A job deferred by our own rate limiter sent nothing, and spends
nothing; its tries are bounded by ``GCAL_JOB_MAX_TRIES``.)

    budget = RetryBudget(limit=7, spent=spent_by_earlier_tries)
    with budget.applied():
        await calendar.list_events(...)        # in-call retries spend from it
    budget.spent                               # carried into the next try by the worker

Outside a job (auth_web's code exchange) no budget applies and a call gets its fixed attempts.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass

import stamina

from gcal.errors import UpstreamUnavailable

# Attempts of one call at most (connection errors, timeouts, 5xx, broken bodies).
IN_CALL_ATTEMPTS = 3

_CURRENT: contextvars.ContextVar[RetryBudget | None] = contextvars.ContextVar(
    "gcal_retry_budget", default=None
)


@dataclass
class RetryBudget:
    """Failed requests a job may still retry; shared by in-call retries and deferrals."""

    limit: int
    spent: int = 0

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.limit

    def spend(self) -> bool:
        """Spend one unit for a failed request; whether it may be retried."""
        if self.exhausted:
            return False
        self.spent += 1
        return True

    @contextlib.contextmanager
    def applied(self) -> Iterator[RetryBudget]:
        """Make this the budget of the calls made inside the ``with`` (this task only)."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)


def current() -> RetryBudget | None:
    """The budget of the job running in this task, if any."""
    return _CURRENT.get()


def _may_retry(failed: Exception) -> bool:
    # Transient, and the running job's budget has a unit left; or no job is running, and the
    # attempt count alone bounds the call.
    if not isinstance(failed, UpstreamUnavailable):
        return False
    budget = current()
    return budget is None or not budget.exhausted


def in_call_attempts() -> AsyncIterable[stamina.Attempt]:
    """The attempts of one call::

        async for attempt in in_call_attempts():
            spend_on_retry(attempt)
            with attempt:
                ...

    :class:`UpstreamUnavailable` is retried (jittered exponential backoff) while attempts and
    the job's budget last; anything else is raised at once."""
    return stamina.retry_context(on=_may_retry, attempts=IN_CALL_ATTEMPTS)


def spend_on_retry(attempt: stamina.Attempt) -> None:
    """A retry is about to be sent: it costs the running job one unit."""
    budget = current()
    if attempt.num > 1 and budget is not None:
        budget.spend()
