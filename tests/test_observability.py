"""What an operator sees of a full run: the worker's log lines and its ``/metrics``, and
auth_web's request metrics, with nothing in the logs a user or Google entrusted to us.

The run links a user through auth_web (OAuth code exchange), creates and lists events
(recognisable text in every field), survives a token refresh and a Google outage (a deferral),
and ends jobs with ``not_found``, ``invalid_request`` and ``internal`` (tokens sealed under a
key the service no longer has), then disconnects the user. The logs of the whole run are
captured as the processes write them (``gcal.logs.configure``, JSON, DEBUG) and searched.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from emulator.faults import FaultRule
from gcal import logs
from tests.conftest import MakeAuthWeb
from tests.harness import Emulator
from tests.metrics_lint import check_metrics, value
from tests.pipeline import Pipeline, pipeline
from tests.services import API_KEY, CLIENT_ID, CLIENT_SECRET, AuthWeb
from worker.factory import create_worker
from worker.metrics import WorkerMetrics
from worker.metrics_server import serve_metrics

# Recognisable values: none may reach a log line.
EVENT = {
    "summary": "Zanzibar merger talks",
    "description": "Bring the Quokka term sheet",
    "location": "Room Ultramarine 7",
    "attendees": [{"email": "cassandra.witness@example.org"}],
    "start": {"dateTime": "2026-12-01T10:00:00Z"},
    "end": {"dateTime": "2026-12-01T11:00:00Z"},
}
ARGUMENT_SECRET = "Hieroglyph-4471-argument"
# A job name a producer made up, with a line of its own for the log: never written as it is.
FORGED_NAME = "drop_tables\nINFO worker.reports job 1 Forged-5318-line finished: ok"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Every log record of the test, as the processes write them: JSON lines, DEBUG."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    quieted = {name: logging.getLogger(name).level for name in ("arq.worker", "arq.jobs")}
    out = io.StringIO()
    logs.configure("json", "DEBUG", stream=out)
    try:
        yield out
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        for name, level in quieted.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix) as p:
        yield p


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return await resp.text()


async def link_through_auth_web(auth_web: AuthWeb, user_id: str) -> str:
    """Link ``user_id`` as a calling service and a browser do; the callback URL (it holds
    the authorization code and the state)."""
    # A browser keeps the consent cookie /auth/start sets (aiohttp skips IP hosts unless told).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        resp = await http.get(
            f"{auth_web.url}/auth/url/{user_id}",
            params={"login_hint": "alice@example.com"},
            headers=auth_web.auth_header,
        )
        start = (await resp.json())["url"]
        resp = await http.get(start, allow_redirects=False)  # binds this browser, to Google
        resp = await http.get(resp.headers["Location"], allow_redirects=False)  # auto-approved
        callback = resp.headers["Location"]
        resp = await http.get(callback, allow_redirects=False)
        assert resp.status == 200, await resp.text()
    return str(callback)


def records(out: io.StringIO) -> list[dict[str, Any]]:
    lines = out.getvalue().splitlines()
    assert lines, "nothing was logged"
    return [json.loads(line) for line in lines]  # every line is one JSON object


async def test_a_full_run_is_logged_and_counted_without_secrets(
    pipe: Pipeline, make_auth_web: MakeAuthWeb, log_output: io.StringIO
) -> None:
    emulator = pipe.emulator
    emulator.configure(auto_approve=True)
    auth_web = await make_auth_web(token_keys=pipe.settings.token_keys)
    port = free_port()
    await pipe.start_worker(worker_metrics_port=port)

    callback = await link_through_auth_web(auth_web, "u1")
    secrets = {
        CLIENT_SECRET,
        API_KEY,
        *(key.get_secret_value() for key in pipe.settings.token_keys),
        *(key.get_secret_value() for key in auth_web.settings.api_keys),
        *(parse_qs(urlsplit(callback).query)["code"]),
        *(parse_qs(urlsplit(callback).query)["state"]),
        "Zanzibar merger talks",
        "Bring the Quokka term sheet",
        "Room Ultramarine 7",
        "cassandra.witness@example.org",
        ARGUMENT_SECRET,
        "Forged-5318-line",
    }

    jobs: dict[str, str] = {}  # job id -> the result code it must end with
    created = await pipe.run("create_event", {"user_id": "u1", "event": EVENT})
    assert created.ok, created.error
    jobs[created.job_id] = "ok"

    emulator.store.clock.advance(3700)  # the access token expires at Google: a refresh
    emulator.faults.add(FaultRule(endpoint="events.list", error_rate=1, error_status=503, count=3))
    listed = await pipe.run("get_events", {"user_id": "u1"})  # 3 failures: one deferral
    assert listed.ok, listed.error
    assert listed.data is not None
    assert [e["summary"] for e in listed.data["events"]] == [EVENT["summary"]]
    jobs[listed.job_id] = "ok"

    missing = await pipe.run("get_events", {"user_id": "u1", "calendar_id": "nope@example.com"})
    assert missing.error is not None
    jobs[missing.job_id] = missing.error.code
    assert missing.error.code == "not_found"

    invalid = await pipe.run("create_event", {"user_id": "u1", "event": ARGUMENT_SECRET})
    assert invalid.error is not None
    jobs[invalid.job_id] = "invalid_request"

    forged_id = uuid.uuid4().hex  # the client refuses the name; arq's own enqueue does not
    await pipe.arq.enqueue_job(FORGED_NAME, _job_id=forged_id, user_id="u1")
    forged = await pipe.client.result(forged_id, timeout=10)
    assert forged.error is not None
    assert forged.error.code == "invalid_request"
    jobs[forged_id] = "invalid_request"

    # A misconfiguration: Google no longer accepts this service's client secret (rotated in
    # the console, not here), met on the refresh after an access token expired: internal.
    registered = emulator.store.clients[CLIENT_ID]
    emulator.store.clients[CLIENT_ID] = dataclasses.replace(registered, client_secret="rotated")
    emulator.store.clock.advance(3700)
    broken = await pipe.run("list_calendars", {"user_id": "u1"})
    emulator.store.clients[CLIENT_ID] = registered
    assert broken.error is not None
    assert broken.error.code == "internal"
    jobs[broken.job_id] = "internal"

    secrets |= set(emulator.store.access_tokens) | set(emulator.store.refresh_tokens)
    gone = await pipe.run("disconnect", {"user_id": "u1"})
    assert gone.ok, gone.error
    jobs[gone.job_id] = "ok"

    worker_page = await scrape(f"http://127.0.0.1:{port}/metrics")
    auth_page = await scrape(f"{auth_web.url}/metrics")
    await pipe.stop()

    # The logs: one line per finished job, with its fields; the cause of the internal one.
    lines = records(log_output)
    finished = [line for line in lines if line.get("logger") == "worker.reports"]
    ends = {line["job_id"]: line for line in finished if line.get("result") != "deferred"}
    assert {job_id: line["result"] for job_id, line in ends.items()} == jobs
    assert len([line for line in finished if line.get("result") != "deferred"]) == len(jobs)
    forged_line = ends.pop(forged_id)  # refused before any try: no duration, no try
    assert (forged_line["job"], forged_line["duration_s"], forged_line["try"]) == (
        "<unknown>",  # the payload's name was refused, not written
        None,
        None,
    )
    for line in ends.values():
        assert isinstance(line["duration_s"], float)
        assert line["try"] >= 1
        assert line["job"] in {"create_event", "get_events", "list_calendars", "disconnect"}
    assert ends[created.job_id]["level"] == "INFO"
    assert ends[missing.job_id]["level"] == "WARNING"
    assert ends[broken.job_id]["level"] == "ERROR"
    assert ends[listed.job_id]["try"] == 2
    deferred = [line for line in finished if line.get("result") == "deferred"]
    assert [(d["job_id"], d["reason"]) for d in deferred] == [
        (listed.job_id, "upstream_unavailable")
    ]
    causes = [
        line
        for line in lines
        if line.get("job_id") == broken.job_id and line["logger"] != "worker.reports"
    ]
    assert causes, "the internal result's cause is not in the log"
    assert "invalid_client" in causes[0]["message"]
    assert "InternalError" in causes[0]["exc"]

    text = log_output.getvalue()
    leaked = sorted(secret for secret in secrets if secret and secret in text)
    assert leaked == [], "found in the logs"

    # The worker's metrics.
    check_metrics(worker_page)
    assert value(worker_page, "gcal_worker_jobs_total", job="create_event", result="ok") == 1
    assert value(worker_page, "gcal_worker_jobs_total", job="get_events", result="ok") == 1
    assert value(worker_page, "gcal_worker_jobs_total", job="get_events", result="not_found") == 1
    assert value(worker_page, "gcal_worker_jobs_total", job="list_calendars", result="internal")
    assert (
        value(worker_page, "gcal_worker_jobs_total", job="unknown", result="invalid_request") == 1
    )
    assert (
        value(
            worker_page,
            "gcal_worker_job_deferrals_total",
            job="get_events",
            reason="upstream_unavailable",
        )
        == 1
    )
    assert value(worker_page, "gcal_worker_job_duration_seconds_count", job="get_events") == 2
    assert value(worker_page, "gcal_google_requests_total", method="events.insert", status="200")
    assert value(worker_page, "gcal_google_requests_total", method="events.list", status="503") == 3
    assert value(worker_page, "gcal_google_requests_total", method="events.list", status="401")
    assert value(worker_page, "gcal_google_request_duration_seconds_count", method="events.list")
    assert value(worker_page, "gcal_token_refreshes_total", result="ok") == 1
    assert value(worker_page, "gcal_grant_revocations_total", origin="service") == 1
    assert value(worker_page, "gcal_queue_jobs") == 0
    assert value(worker_page, "gcal_queue_oldest_job_age_seconds") == 0

    # auth_web's request metrics: by route name, never by path (which holds the user id).
    check_metrics(auth_page)
    assert (
        value(
            auth_page, "gcal_auth_http_requests_total", route="auth_url", method="GET", status="200"
        )
        == 1
    )
    assert value(
        auth_page,
        "gcal_auth_http_requests_total",
        route="auth_callback",
        method="GET",
        status="200",
    )
    assert value(auth_page, "gcal_auth_http_request_duration_seconds_count", route="auth_url") == 1
    assert "u1" not in auth_page


async def test_queue_depth_and_the_oldest_jobs_age_are_read_when_scraped(pipe: Pipeline) -> None:
    port = free_port()
    seconds, _ = await pipe.redis.time()
    due = seconds * 1000 - 60_000  # a minute ago, by Redis's clock
    await pipe.redis.zadd(
        pipe.keys.queue, {"waiting-a": due, "waiting-b": due + 5, "later": due + 3_600_000}
    )
    async with serve_metrics(
        WorkerMetrics(), pipe.redis, pipe.keys.queue, host="127.0.0.1", port=port
    ):
        page = await scrape(f"http://127.0.0.1:{port}/metrics")
        await pipe.redis.delete(pipe.keys.queue)
        empty = await scrape(f"http://127.0.0.1:{port}/metrics")
    check_metrics(page)
    assert value(page, "gcal_queue_jobs") == 3
    age = value(page, "gcal_queue_oldest_job_age_seconds")
    assert age is not None
    assert 60 <= age < 70
    assert value(empty, "gcal_queue_jobs") == 0
    assert value(empty, "gcal_queue_oldest_job_age_seconds") == 0


async def test_a_second_worker_on_the_same_metrics_port_is_refused(pipe: Pipeline) -> None:
    port = free_port()
    await pipe.start_worker(worker_metrics_port=port)
    await pipe.run("list_calendars", {"user_id": "nobody"})  # the first one is up
    second = create_worker(
        pipe.settings.model_copy(update={"worker_metrics_port": port}), handle_signals=False
    )
    with pytest.raises(Exception, match="GCAL_WORKER_METRICS_PORT"):
        await second.main()
    await second.close()


def test_secret_settings_never_reach_a_json_log_line() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.JsonFormatter())
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "settled %s", ("ok",), None)
    record.secret = SecretStr("do-not-print")
    handler.emit(record)
    line = json.loads(out.getvalue())
    assert line["message"] == "settled ok"
    assert "do-not-print" not in out.getvalue()
