"""Scopes per job: users are asked for the least-privilege scopes that serve every job, a job
the grant cannot serve answers ``scope_missing`` naming the scope to ask for, and a service
gets it by asking auth_web for a link with that ``scope``.

Real HTTP (auth_web, the emulator as Google), real Redis, a real worker.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from redis.asyncio import Redis

from gcal import scopes
from gcal.consent import state_digest
from gcal.environment import ConfigError, load
from gcal.settings import Settings
from jobs.registry import default_scopes, resolved, unserved
from jobs.results import JobResult
from tests.conftest import MakeAuthWeb
from tests.harness import Emulator
from tests.pipeline import Pipeline, pipeline
from tests.services import AuthWeb
from tests.test_linking import browser, consent_url, link, start

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


async def test_linking_again_with_the_named_scope_serves_the_job(
    pipe: Pipeline, emulator: Emulator, make_auth_web: MakeAuthWeb
) -> None:
    # A deployment that asks for events only; one service wants a user's calendar list.
    emulator.configure(auto_approve=True)
    auth_web = await make_auth_web(token_keys=pipe.settings.token_keys, scopes=(scopes.EVENTS,))
    async with browser() as http:
        await link(http, auth_web, "u1")
    [needed] = missing(await pipe.run("list_calendars", {"user_id": "u1"})) or []

    async with browser() as http:
        url = await consent_url(http, auth_web, "u1", scope=needed, login_hint="alice@example.com")
        google = await start(http, url)
        resp = await http.get(await callback_of(http, google), allow_redirects=False)
    assert resp.status == 200, await resp.text()
    assert asked_in(google) == [scopes.EVENTS, needed, "openid"]
    assert (await pipe.run("list_calendars", {"user_id": "u1"})).ok
    assert (await pipe.run("get_events", {"user_id": "u1"})).ok  # incremental: events kept


def asked_in(google: str) -> list[str]:
    """The scopes a consent URL asks Google for."""
    return parse_qs(urlsplit(google).query)["scope"][0].split()


async def callback_of(http: aiohttp.ClientSession, google: str) -> str:
    """The callback URL the auto-approving emulator sends the browser to from ``google``."""
    resp = await http.get(google, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    return resp.headers["Location"]


async def test_extra_scopes_are_asked_repeated_or_space_separated(auth_web: AuthWeb) -> None:
    async with browser() as http:
        resp = await http.get(
            f"{auth_web.url}/auth/url/u1",
            params=[("scope", f"{scopes.CALENDAR_READONLY} email"), ("scope", scopes.EVENTS)],
            headers=auth_web.auth_header,
        )
        google = await start(http, (await resp.json())["url"])
    assert asked_in(google) == [*default_scopes(), scopes.CALENDAR_READONLY, "email", "openid"]


@pytest.mark.parametrize(
    "scope",
    [
        "https://www.googleapis.com/auth/drive",
        "calendar.readonly",  # Google's full URL, not a short name
        f"{scopes.EVENTS} bogus",
    ],
)
async def test_unknown_scopes_are_refused(auth_web: AuthWeb, scope: str) -> None:
    async with browser() as http:
        resp = await http.get(
            f"{auth_web.url}/auth/url/u1", params={"scope": scope}, headers=auth_web.auth_header
        )
        body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "invalid_request"
    assert "scope must name Google Calendar or sign-in scopes" in body["error"]["message"]


async def test_the_callback_checks_the_grant_against_what_the_link_asked_for(
    auth_web: AuthWeb, redis: Redis
) -> None:
    # The service asked for calendar.readonly too; it is dropped on the way to Google (an
    # edited URL): the grant is checked against the consent's own record, not the URL.
    async with browser() as http:
        url = await consent_url(
            http, auth_web, "u1", scope=scopes.CALENDAR_READONLY, login_hint="a@b.example"
        )
        google = urlsplit(await start(http, url))
        query = parse_qs(google.query)
        query["scope"] = [query["scope"][0].replace(scopes.CALENDAR_READONLY, "")]
        edited = google._replace(query=urlencode(query, doseq=True)).geturl()
        resp = await http.get(await callback_of(http, edited), allow_redirects=False)
        page = await resp.text()
    assert resp.status == 403
    assert "Calendar permission missing" in page
    assert await auth_web.services.tokens.get("u1") is None
    [(_, fields)] = await redis.xrange(auth_web.services.keys.notification_stream)
    announced = json.loads(fields[b"json"])
    assert announced["type"] == "auth_scope_missing"
    assert announced["missing_scopes"] == [scopes.CALENDAR_READONLY]


async def test_a_consent_begun_before_scopes_were_kept_asks_for_the_required_ones(
    auth_web: AuthWeb, redis: Redis
) -> None:
    # A link issued by the previous version, opened after a deploy: its record has no scopes.
    s = auth_web.services
    async with browser() as http:
        url = await consent_url(http, auth_web, "u1", scope="email", login_hint="a@b.example")
        state = parse_qs(urlsplit(url).query)["state"][0]
        digest = state_digest(state)
        key = s.keys.oauth_state(digest)
        sealed: bytes = await redis.hget(key, "consent")  # type: ignore[misc]  # redis-py's union
        record = s.cipher.open("oauth_state", digest, sealed)
        del record["scopes"]
        resealed = s.cipher.seal("oauth_state", digest, record)
        await redis.hset(key, mapping={"consent": resealed})  # type: ignore[misc]
        google = await start(http, url)
        resp = await http.get(await callback_of(http, google), allow_redirects=False)
    assert asked_in(google) == [*default_scopes(), "openid"]
    assert resp.status == 200, await resp.text()
    assert await s.tokens.get("u1") is not None
