"""Fault injection: latency, errors, connection resets and broken bodies, per endpoint.

Rules are added through the control API (``POST /_emulator/faults``) and matched by endpoint
name: a Calendar method (``events.list``), ``batch``, ``oauth.token``, ``oauth.revoke``,
``oauth.authorize``, or ``*`` for all. The first live rule that matches decides. A rule with
``count`` applies to that many requests and then retires, which makes tests deterministic;
rates draw from a seeded generator.

A :class:`Hold` stops requests to one endpoint on arrival until the test releases them, so a
test can act while a request is in flight at a chosen point, without timing::

    hold = emulator.faults.hold("oauth.token")      # the next token request waits
    task = asyncio.create_task(accounts.access_token("u1"))
    await hold.reached()                            # it has arrived and waits
    ...                                             # change the world meanwhile
    hold.release()                                  # now the emulator answers it

Holds are for tests that run the emulator in their own event loop (they are asyncio events,
not part of the control API); :meth:`Faults.clear` releases any left.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class FaultRule(BaseModel):
    """One fault rule, as posted to the control API."""

    model_config = ConfigDict(extra="forbid")

    endpoint: str = "*"
    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    # Probability that a request gets ``error_status`` instead of its answer.
    error_rate: float = Field(default=0.0, ge=0, le=1)
    error_status: int = Field(default=503)
    # 403 errors: "rateLimitExceeded", "userRateLimitExceeded" or "quotaExceeded".
    error_reason: str | None = None
    retry_after: int | None = Field(default=None, ge=0)
    # Probability that the connection is reset before any answer.
    reset_rate: float = Field(default=0.0, ge=0, le=1)
    # Probability that the body is cut off mid-way (the connection closes early).
    truncate_rate: float = Field(default=0.0, ge=0, le=1)
    # Probability that a complete response carries a body that is not the JSON promised.
    malformed_rate: float = Field(default=0.0, ge=0, le=1)
    # Apply to this many matching requests, then retire (None: forever).
    count: int | None = Field(default=None, ge=1)


@dataclass(slots=True)
class FaultPlan:
    """What to do to one request."""

    delay: float = 0.0
    error_status: int | None = None
    error_reason: str | None = None
    retry_after: int | None = None
    reset: bool = False
    truncate: bool = False
    malformed: bool = False

    @property
    def any(self) -> bool:
        return bool(
            self.delay or self.error_status or self.reset or self.truncate or self.malformed
        )


@dataclass(slots=True)
class _Live:
    rule: FaultRule
    remaining: int | None


@dataclass(slots=True)
class Hold:
    """Requests to ``endpoint`` stopped on arrival (the next ``count`` of them) until
    released."""

    endpoint: str
    count: int = 1
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    async def reached(self) -> None:
        """Return once a held request has arrived (its body read) and waits."""
        await self._arrived.wait()

    def release(self) -> None:
        """Let every request held here, and any later one it would hold, go on."""
        self._released.set()

    async def wait(self) -> None:
        """Called for a held request: announce its arrival, wait for the release."""
        self._arrived.set()
        await self._released.wait()


@dataclass(slots=True)
class Faults:
    """The active fault rules."""

    seed: int | None = None
    _rules: list[_Live] = field(default_factory=list)
    _random: random.Random = field(default_factory=random.Random)
    _holds: list[Hold] = field(default_factory=list)
    injected: int = 0

    def __post_init__(self) -> None:
        self._random.seed(self.seed)

    def add(self, rule: FaultRule) -> None:
        self._rules.append(_Live(rule, rule.count))

    def hold(self, endpoint: str, *, count: int = 1) -> Hold:
        """Hold the next ``count`` requests to ``endpoint`` until the hold is released."""
        hold = Hold(endpoint, count)
        self._holds.append(hold)
        return hold

    def take_hold(self, endpoint: str) -> Hold | None:
        """The hold a request to ``endpoint`` must wait on, if any (it counts as one)."""
        for hold in self._holds:
            if hold.endpoint == endpoint and hold.count > 0:
                hold.count -= 1  # a spent hold stays listed, so clear() still releases it
                return hold
        return None

    def clear(self, seed: int | None = None) -> None:
        for hold in self._holds:
            hold.release()
        self._holds.clear()
        self._rules.clear()
        self.injected = 0
        if seed is not None:
            self._random.seed(seed)

    def rules(self) -> list[FaultRule]:
        return [live.rule for live in self._rules]

    def plan(self, endpoint: str, *, exact: bool = False) -> FaultPlan:
        """Draw the faults for one request to ``endpoint``.

        ``exact`` skips ``*`` rules: a batch part is targeted only by rules naming its method,
        since ``*`` rules already apply to the outer batch request.
        """
        for live in self._rules:
            if live.rule.endpoint != endpoint and (exact or live.rule.endpoint != "*"):
                continue
            plan = self._draw(live.rule)
            if live.remaining is not None:
                live.remaining -= 1
                if live.remaining <= 0:
                    self._rules.remove(live)
            if plan.any:
                self.injected += 1
            return plan
        return FaultPlan()

    def _draw(self, rule: FaultRule) -> FaultPlan:
        rnd = self._random.random
        delay = rule.latency_ms / 1000.0
        if rule.jitter_ms:
            delay += rnd() * rule.jitter_ms / 1000.0
        plan = FaultPlan(delay=delay)
        if rule.reset_rate and rnd() < rule.reset_rate:
            plan.reset = True
        elif rule.error_rate and rnd() < rule.error_rate:
            plan.error_status = rule.error_status
            plan.error_reason = rule.error_reason
            plan.retry_after = rule.retry_after
        elif rule.truncate_rate and rnd() < rule.truncate_rate:
            plan.truncate = True
        elif rule.malformed_rate and rnd() < rule.malformed_rate:
            plan.malformed = True
        return plan
