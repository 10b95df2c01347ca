"""``python -m jobs`` as a developer or a calling service uses it: against a running worker
(in the test's loop, the emulator as Google) and auth_web, through Redis and HTTP only, with
nothing but the settings each command reads."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.conftest import MakeAuthWeb
from tests.harness import Emulator
from tests.pipeline import Pipeline, pipeline
from tests.services import API_KEY
from tests.test_cli import bare_env, run

EVENT_ARGS = (
    *("--summary", "Standup", "--start", "2026-12-01T09:00:00Z"),
    *("--end", "2026-12-01T09:15:00Z", "--attendee", "bob@example.com"),
)


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix) as p:
        await p.link("u1")
        await p.start_worker()
        yield p


def redis_env(pipe: Pipeline) -> dict[str, str]:
    return bare_env(
        GCAL_REDIS_URL=str(pipe.settings.redis_url), GCAL_REDIS_PREFIX=pipe.settings.redis_prefix
    )


async def test_create_event_then_get_events(pipe: Pipeline) -> None:
    env = redis_env(pipe)
    code, out, err = await run("jobs", "create-event", "u1", *EVENT_ARGS, env=env)
    assert code == 0, err
    created = json.loads(out)
    assert created["ok"] is True
    assert created["data"]["event"]["summary"] == "Standup"
    assert created["data"]["event"]["attendees"][0]["email"] == "bob@example.com"

    window = ("--from", "2026-12-01T00:00:00Z", "--to", "2026-12-02T00:00:00Z")
    code, out, err = await run("jobs", "get-events", "u1", *window, "--basic", env=env)
    assert code == 0, err
    listed = json.loads(out)
    assert [event["summary"] for event in listed["data"]["events"]] == ["Standup"]
    code, out, _ = await run("jobs", "get-events", "u1", "--from", "2027-01-01T00:00:00Z", env=env)
    assert json.loads(out)["data"]["events"] == []


async def test_a_failed_job_prints_its_error_and_exits_1(pipe: Pipeline) -> None:
    env = redis_env(pipe)
    code, out, _ = await run(
        "jobs", "run", "get_events", '{"user_id": "u1", "max_events": 0}', env=env
    )
    assert code == 1
    error = json.loads(out)["error"]
    assert error["code"] == "invalid_request"
    assert error["fields"][0]["field"] == "max_events"
    code, out, _ = await run("jobs", "list-calendars", "stranger", env=env)
    assert code == 1
    assert json.loads(out)["error"]["code"] == "auth_required"


async def test_run_reads_arguments_from_stdin_and_result_waits_for_a_job(pipe: Pipeline) -> None:
    env = redis_env(pipe)
    code, out, err = await run(
        "jobs", "run", "list_calendars", "-", "--no-wait", env=env, stdin=b'{"user_id": "u1"}'
    )
    assert code == 0, err
    job_id = out.strip()
    code, out, err = await run("jobs", "result", job_id, env=env)
    assert code == 0, err
    result = json.loads(out)
    assert result["job_id"] == job_id
    assert result["data"]["calendars"][0]["id"] == pipe.email


async def test_no_result_in_time_is_exit_3(pipe: Pipeline) -> None:
    code, _, err = await run(
        "jobs", "result", "never-enqueued", "--timeout", "0.2", env=redis_env(pipe)
    )
    assert code == 3
    assert "no result for job never-enqueued within 0.2s" in err


async def test_watch_prints_notifications_as_json_lines(pipe: Pipeline) -> None:
    env = redis_env(pipe)
    done = await pipe.run("list_calendars", {"user_id": "u1"})
    code, out, err = await run(
        "jobs", "watch", "--from-start", "--count", "1", "--type", "job_completed", env=env
    )
    assert code == 0, err
    assert [json.loads(line)["job_id"] for line in out.splitlines()] == [done.job_id]

    # Following: only what happens after it started.
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobs",
        "watch",
        "--count",
        "1",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        started = await asyncio.wait_for(proc.stderr.readline(), 20)
        assert b"watching" in started
        later = await pipe.run("list_calendars", {"user_id": "u1"})
        line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    note = json.loads(line)
    assert (note["type"], note["job_id"], note["ok"]) == ("job_completed", later.job_id, True)


async def test_link_url_asks_auth_web_with_the_api_key(
    emulator: Emulator, make_auth_web: MakeAuthWeb
) -> None:
    auth_web = await make_auth_web()
    env = bare_env(
        GCAL_API_KEYS=json.dumps([API_KEY]), GCAL_REDIRECT_URI=f"{auth_web.url}/auth/callback"
    )
    code, out, err = await run(
        "jobs",
        "link-url",
        "demo-user",
        "--login-hint",
        "a@example.com",
        "--scope",
        "email",
        env=env,
    )
    assert code == 0, err
    answer = json.loads(out)
    assert answer["url"].startswith(f"{auth_web.url}/auth/start?")  # it binds the browser
    async with aiohttp.ClientSession() as http:
        resp = await http.get(answer["url"], allow_redirects=False)
    google = resp.headers["Location"]
    assert google.startswith(str(auth_web.settings.authorization_endpoint))
    assert "login_hint=a%40example.com" in google
    assert "+email+openid&" in google  # the configured scopes, the one asked for, openid
    assert answer["expires_at"].endswith("Z")

    env["GCAL_API_KEYS"] = '["not-the-key"]'
    code, _, err = await run("jobs", "link-url", "demo-user", "--auth-url", auth_web.url, env=env)
    assert code == 4
    assert "auth_web answered 401" in err
    assert "not-the-key" not in err
