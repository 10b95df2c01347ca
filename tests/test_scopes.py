"""Scopes per job: users are asked for the least-privilege scopes that serve every job, and a
job the grant cannot serve answers ``scope_missing`` naming the scope to ask for.

Real HTTP (auth_web, the emulator as Google), real Redis, a real worker.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gcal import scopes
from gcal.environment import ConfigError, load
from gcal.settings import Settings
from jobs.registry import default_scopes, resolved, unserved
from jobs.results import JobResult
from tests.conftest import MakeAuthWeb
from tests.harness import Emulator
from tests.pipeline import Pipeline, pipeline
from tests.services import AuthWeb
from tests.test_linking import browser, link

FREE_BUSY = {"time_min": "2026-12-01T00:00:00Z", "time_max": "2026-12-02T00:00:00Z"}


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix) as p:
        await p.start_worker()
        yield p


@pytest.fixture
async def auth_web(pipe: Pipeline, emulator: Emulator, make_auth_web: MakeAuthWeb) -> AuthWeb:
    """auth_web sharing the workers' Redis prefix and token key, as a deployment does."""
    emulator.configure(auto_approve=True)
    return await make_auth_web(token_keys=pipe.settings.token_keys)


def missing(result: JobResult) -> list[str] | None:
    assert not result.ok, result
    assert result.error is not None
    assert result.error.code == "scope_missing"
    return result.error.missing_scopes


def test_unset_scopes_become_the_least_privilege_scopes_of_every_job() -> None:
    assert Settings(dev_mode=True).scopes is None  # the core cannot know the jobs
    assert resolved(Settings(dev_mode=True)).scopes == default_scopes()
    assert default_scopes() == (
        scopes.CALENDAR_LIST_READONLY,
        scopes.EVENTS,
        scopes.FREEBUSY,
    )
    assert unserved(default_scopes()) == []
    configured = Settings(dev_mode=True, scopes=(scopes.EVENTS, "email"))
    assert resolved(configured).scopes == (scopes.EVENTS, "email")


def test_configured_scopes_that_leave_jobs_unserved_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    resolved(Settings(dev_mode=True, scopes=(scopes.EVENTS,)))
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "list_calendars, get_free_busy, sync_calendars" in warning


def test_gcal_scopes_accepts_only_known_scopes_and_never_echoes_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GCAL_DEV_MODE", "true")
    monkeypatch.setenv("GCAL_SCOPES", '["email", "https://evil.example/auth/drive"]')
    with pytest.raises(ConfigError) as caught:
        load()
    assert caught.value.lines == [
        "GCAL_SCOPES (item 1): not a Google Calendar or sign-in scope, as Google spells it"
    ]
    monkeypatch.setenv("GCAL_SCOPES", "[]")
    with pytest.raises(ConfigError, match="GCAL_SCOPES: names no scope"):
        load()


async def test_the_readme_first_job_runs_for_a_user_linked_with_the_default_scopes(
    pipe: Pipeline, auth_web: AuthWeb
) -> None:
    async with browser() as http:
        await link(http, auth_web, "demo-user")
    calendars = await pipe.run("list_calendars", {"user_id": "demo-user"})
    busy = await pipe.run("get_free_busy", {"user_id": "demo-user", **FREE_BUSY})
    events = await pipe.run("get_events", {"user_id": "demo-user"})
    assert (calendars.ok, busy.ok, events.ok) == (True, True, True), (calendars, busy, events)


async def test_a_job_the_grant_cannot_serve_names_the_scope_without_asking_google(
    pipe: Pipeline,
) -> None:
    # Linked before list_calendars' scope was asked for: events only.
    await pipe.link("u1", scopes=[scopes.EVENTS])
    result = await pipe.run("list_calendars", {"user_id": "u1"})
    assert missing(result) == [scopes.CALENDAR_LIST_READONLY]
    assert result.error is not None
    assert scopes.CALENDAR_LIST_READONLY in result.error.message
    assert pipe.emulator.store.requests["calendarList.list"] == 0
    assert (await pipe.run("get_events", {"user_id": "u1"})).ok  # events still serve


async def test_google_refusing_a_scope_names_the_jobs_scope_too(pipe: Pipeline) -> None:
    # Tokens whose scopes are not known (Google sent none): not checked here, Google decides.
    await pipe.link("u1", scopes=[])
    result = await pipe.run("get_free_busy", {"user_id": "u1", **FREE_BUSY})
    assert missing(result) == [scopes.FREEBUSY]
    assert result.error is not None
    assert "insufficientPermissions" in result.error.message
    assert pipe.emulator.store.requests["freebusy.query"] == 1  # and not retried
