"""The job pipeline end to end: producer client -> real Redis -> arq worker -> emulator ->
result key + notification, for every job and every error path."""

from __future__ import annotations

import asyncio
import gc
import json
import pickle
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from unittest.mock import ANY

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline as RedisPipeline

from emulator.faults import FaultRule
from gcal.crypto import Cipher, generate_key
from gcal.tokens import TokenStore
from jobs.results import JobResult
from tests.harness import Emulator
from tests.pipeline import Pipeline, pipeline

START = "2026-12-01T10:00:00+00:00"
END = "2026-12-01T10:30:00+00:00"
EVENT = {"summary": "Planning", "start": {"dateTime": START}, "end": {"dateTime": END}}


@pytest.fixture
async def pipe(emulator: Emulator, redis: Redis, redis_prefix: str) -> AsyncIterator[Pipeline]:
    async with pipeline(emulator, redis, redis_prefix) as p:
        await p.link("u1")
        await p.start_worker()
        yield p


def events_in(pipe: Pipeline, event_id: str | None = None) -> list[dict[str, Any]]:
    calendar = pipe.emulator.store.account(pipe.email).calendars[pipe.email]
    return [
        e.resource
        for e in calendar.events.values()
        if not e.cancelled and (event_id is None or e.id == event_id)
    ]


def error(result: JobResult) -> str:
    assert not result.ok, result
    assert result.error is not None
    return result.error.code


# Every job ------------------------------------------------------------------------------------


async def test_create_event_writes_the_result_before_announcing_it(pipe: Pipeline) -> None:
    async with pipe.redis.pubsub() as pubsub:
        await pubsub.subscribe(pipe.keys.notifications)
        result = await pipe.run("create_event", {"user_id": "u1", "event": EVENT})
        message = None
        async for message in pubsub.listen():
            if message["type"] == "message":
                break
    assert result.ok, result
    assert result.data is not None
    assert result.data["created"] is True
    assert result.data["event"]["summary"] == "Planning"
    assert len(events_in(pipe, result.data["event"]["id"])) == 1
    assert message is not None
    note = json.loads(message["data"])
    assert note == {
        "type": "job_completed",
        "job_id": result.job_id,
        "job": "create_event",
        "ok": True,
        "result_key": pipe.keys.result(result.job_id),
        "at": note["at"],
    }
    stored = await pipe.redis.get(note["result_key"])
    assert stored is not None
    assert JobResult.model_validate_json(stored) == result
    assert 0 < await pipe.redis.ttl(note["result_key"]) <= 24 * 3600
    stream = await pipe.redis.xrange(pipe.keys.notification_stream)
    assert json.loads(stream[-1][1][b"json"])["job_id"] == result.job_id
    # arq's own record points at our result instead of holding a second copy of it.
    await pipe.stop()  # arq writes its record after ours; let the worker finish
    arq_record = json.loads(await pipe.redis.get(f"arq:result:{result.job_id}"))
    assert arq_record["r"] == {"ok": True, "result_key": note["result_key"]}


async def test_create_event_with_the_same_key_creates_one_event(pipe: Pipeline) -> None:
    args = {"user_id": "u1", "event": EVENT, "idempotency_key": "order-17"}
    first = await pipe.run("create_event", args)
    second = await pipe.run("create_event", args)
    assert first.data is not None
    assert second.data is not None
    assert (first.data["created"], second.data["created"]) == (True, False)
    assert first.data["event"]["id"] == second.data["event"]["id"]
    assert len(events_in(pipe)) == 1


async def test_get_events_follows_pages_and_reports_a_cut(pipe: Pipeline) -> None:
    for i in range(7):
        await pipe.run(
            "create_event",
            {"user_id": "u1", "event": {**EVENT, "summary": f"e{i}"}, "idempotency_key": str(i)},
        )
    window = {
        "user_id": "u1",
        "time_min": "2026-12-01T00:00:00Z",
        "time_max": "2026-12-02T00:00:00Z",
    }
    everything = await pipe.run("get_events", {**window, "max_results": 3})
    cut = await pipe.run("get_events", {**window, "max_results": 3, "max_events": 5})
    basic = await pipe.run("get_events", {**window, "projection": "basic", "q": "e3"})
    assert everything.data is not None
    # Three pages' arrays joined into one: every event once.
    assert sorted(e["summary"] for e in everything.data["events"]) == [f"e{i}" for i in range(7)]
    assert everything.data["truncated"] is False
    assert cut.data is not None
    assert len(cut.data["events"]) == 5
    assert cut.data["truncated"] is True
    assert basic.data is not None
    assert [e["summary"] for e in basic.data["events"]] == ["e3"]
    assert pipe.emulator.store.requests["events.list"] == 3 + 2 + 1


async def test_update_event_with_etag_precondition(pipe: Pipeline) -> None:
    created = await pipe.run("create_event", {"user_id": "u1", "event": EVENT})
    assert created.data is not None
    event = created.data["event"]
    update = {"user_id": "u1", "event_id": event["id"], "patch": {"summary": "Renamed"}}
    ok = await pipe.run("update_event", {**update, "etag": event["etag"]})
    stale = await pipe.run("update_event", {**update, "etag": event["etag"]})
    assert ok.data is not None
    assert ok.data["event"]["summary"] == "Renamed"
    assert error(stale) == "precondition_failed"
    assert stale.error is not None
    assert stale.error.retryable is False


async def test_delete_event_is_idempotent(pipe: Pipeline) -> None:
    created = await pipe.run("create_event", {"user_id": "u1", "event": EVENT})
    assert created.data is not None
    args = {"user_id": "u1", "event_id": created.data["event"]["id"]}
    first = await pipe.run("delete_event", args)
    again = await pipe.run("delete_event", args)
    missing = await pipe.run("delete_event", {"user_id": "u1", "event_id": "nosuchevent1"})
    assert first.data == {"already_deleted": False}
    assert again.data == {"already_deleted": True}
    assert error(missing) == "not_found"
    assert events_in(pipe) == []


async def test_list_calendars_and_free_busy(pipe: Pipeline) -> None:
    await pipe.run("create_event", {"user_id": "u1", "event": EVENT})
    calendars = await pipe.run("list_calendars", {"user_id": "u1"})
    busy = await pipe.run(
        "get_free_busy",
        {"user_id": "u1", "time_min": "2026-12-01T00:00:00Z", "time_max": "2026-12-02T00:00:00Z"},
    )
    assert calendars.data is not None
    assert [c["id"] for c in calendars.data["calendars"]] == [pipe.email]
    assert busy.data is not None
    assert busy.data["calendars"]["primary"]["busy"] == [
        {"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T10:30:00Z"}
    ]


async def test_disconnect_revokes_and_later_jobs_need_auth(pipe: Pipeline) -> None:
    result = await pipe.run("disconnect", {"user_id": "u1"})
    after = await pipe.run("list_calendars", {"user_id": "u1"})
    assert result.data == {"was_linked": True}
    assert not pipe.emulator.store.grants
    assert error(after) == "auth_required"


# Bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"user_id": "u1", "event": {**EVENT, "end": {"dateTime": START}}}, "event"),
        ({"user_id": "u1", "event": EVENT, "colour": "red"}, "colour"),
        ({"user_id": "bad:id", "event": EVENT}, "user_id"),
        (
            {"user_id": "u1", "event": {**EVENT, "start": {"dateTime": "2026-12-01T10:00:00"}}},
            "event",
        ),
        ({"user_id": "u1"}, "event"),
    ],
)
async def test_invalid_arguments_get_a_typed_result_naming_the_field(
    pipe: Pipeline, args: dict[str, Any], field: str
) -> None:
    result = await pipe.run("create_event", args)
    assert error(result) == "invalid_request"
    assert result.error is not None
    assert result.error.fields is not None
    assert any(f.field.startswith(field) for f in result.error.fields), result.error.fields
    assert pipe.emulator.store.requests["events.insert"] == 0
    # The worker keeps running.
    assert (await pipe.run("list_calendars", {"user_id": "u1"})).ok


async def test_unknown_job_and_undecodable_payloads_are_recorded_as_failed(pipe: Pipeline) -> None:
    arq = pipe.arq  # enqueue what the client refuses to
    unknown_id, pickled_id = uuid.uuid4().hex, uuid.uuid4().hex
    await arq.enqueue_job("drop_tables", _job_id=unknown_id, user_id="u1")
    unknown = await pipe.client.result(unknown_id, timeout=10)
    # A pickled payload put on the queue by hand is never unpickled or run.
    await pipe.redis.set(f"arq:job:{pickled_id}", pickle.dumps({"f": "create_event", "k": {}}))
    await pipe.redis.zadd(pipe.keys.queue, {pickled_id: int(time.time() * 1000)})
    pickled = await pipe.client.result(pickled_id, timeout=10)
    assert error(unknown) == "invalid_request"
    assert unknown.error is not None
    assert "unknown job name" in unknown.error.message
    assert error(pickled) == "invalid_request"
    assert pipe.emulator.store.requests["events.insert"] == 0
    assert (await pipe.run("list_calendars", {"user_id": "u1"})).ok


async def test_positional_arguments_are_refused(pipe: Pipeline) -> None:
    arq = pipe.arq  # enqueue what the client refuses to
    job_id = uuid.uuid4().hex
    await arq.enqueue_job("list_calendars", "u1", _job_id=job_id)
    result = await pipe.client.result(job_id, timeout=10)
    assert error(result) == "invalid_request"


# Google's failures -----------------------------------------------------------------------------


async def test_unlinked_user_needs_auth(pipe: Pipeline) -> None:
    result = await pipe.run("list_calendars", {"user_id": "stranger"})
    assert error(result) == "auth_required"


async def test_a_401_refreshes_once_and_succeeds(pipe: Pipeline) -> None:
    pipe.emulator.store.access_tokens.clear()  # the stored access token is no longer valid
    result = await pipe.run("list_calendars", {"user_id": "u1"})
    assert result.ok, result
    assert pipe.emulator.store.requests["oauth.token.refresh_token"] == 1


async def test_revoked_grant_is_auth_revoked_and_announced(pipe: Pipeline) -> None:
    pipe.emulator.store.revoke_grant(pipe.email)
    result = await pipe.run("list_calendars", {"user_id": "u1"})
    assert error(result) == "auth_revoked"
    stream = await pipe.redis.xrange(pipe.keys.notification_stream)
    types = [json.loads(fields[b"json"])["type"] for _, fields in stream]
    assert "auth_revoked" in types


async def test_undecryptable_tokens_are_auth_required_and_announced_once(
    pipe: Pipeline,
) -> None:
    # Keys rotated out of order: the stored tokens open with none of the worker's keys.
    tokens = await TokenStore(pipe.redis, pipe.keys, Cipher(pipe.settings.token_keys)).get("u1")
    assert tokens is not None
    await TokenStore(pipe.redis, pipe.keys, Cipher([generate_key()])).put("u1", tokens)
    listed = await pipe.run("list_calendars", {"user_id": "u1"})
    created = await pipe.run("create_event", {"user_id": "u1", "event": EVENT})
    assert error(listed) == error(created) == "auth_required"
    assert listed.error is not None
    assert "cannot be decrypted" in listed.error.message
    stream = await pipe.redis.xrange(pipe.keys.notification_stream)
    notes = [json.loads(fields[b"json"]) for _, fields in stream]
    required = [n for n in notes if n["type"] == "auth_required"]
    assert required == [
        {"type": "auth_required", "user_id": "u1", "reason": "tokens_unreadable", "at": ANY}
    ]
    assert pipe.emulator.store.requests["calendarList.list"] == 0


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(
            endpoint="calendarList.list", error_rate=1, error_status=429, retry_after=0, count=1
        ),
        FaultRule(endpoint="calendarList.list", error_rate=1, error_status=403, count=1),
        FaultRule(
            endpoint="calendarList.list",
            error_rate=1,
            error_status=403,
            error_reason="userRateLimitExceeded",
            count=1,
        ),
    ],
    ids=["429", "403-rateLimitExceeded", "403-userRateLimitExceeded"],
)
async def test_rate_limits_defer_the_job_then_it_completes(pipe: Pipeline, rule: FaultRule) -> None:
    pipe.emulator.faults.add(rule)
    result = await pipe.run("list_calendars", {"user_id": "u1"})
    assert result.ok, result
    assert pipe.emulator.faults.injected == 1  # not retried in-call: deferred, then run again
    assert pipe.emulator.store.requests["calendarList.list"] == 1


async def test_quota_exceeded_opens_the_users_breaker(pipe: Pipeline) -> None:
    pipe.emulator.store.account(pipe.email).quota_exceeded = True
    first = await pipe.run("create_event", {"user_id": "u1", "event": EVENT})
    inserts = pipe.emulator.store.requests["events.insert"]
    second = await pipe.run("list_calendars", {"user_id": "u1"})
    assert error(first) == "quota_exhausted"
    assert first.error is not None
    assert first.error.retry_after == pipe.settings.quota_breaker_seconds
    assert error(second) == "quota_exhausted"  # fails fast: Google is not asked
    assert pipe.emulator.store.requests["events.insert"] == inserts == 1
    assert pipe.emulator.store.requests["calendarList.list"] == 0


@pytest.mark.parametrize(
    ("status", "code"), [(404, "not_found"), (410, "gone"), (412, "precondition_failed")]
)
async def test_client_errors_map_to_their_codes(pipe: Pipeline, status: int, code: str) -> None:
    pipe.emulator.faults.add(
        FaultRule(endpoint="calendarList.list", error_rate=1, error_status=status)
    )
    result = await pipe.run("list_calendars", {"user_id": "u1"})
    assert error(result) == code


async def test_a_transient_5xx_is_retried_within_the_call(pipe: Pipeline) -> None:
    pipe.emulator.faults.add(
        FaultRule(endpoint="calendarList.list", error_rate=1, error_status=503, count=2)
    )
    result = await pipe.run("list_calendars", {"user_id": "u1"})
    assert result.ok
    assert pipe.emulator.faults.injected == 2


async def test_persistent_5xx_ends_as_upstream_unavailable_after_bounded_tries(
    emulator: Emulator, redis: Redis, redis_prefix: str
) -> None:
    async with pipeline(emulator, redis, redis_prefix, job_max_tries=2) as p:
        await p.link("u1")
        await p.start_worker()
        emulator.faults.add(FaultRule(endpoint="calendarList.list", error_rate=1, error_status=500))
        result = await p.run("list_calendars", {"user_id": "u1"})
    assert error(result) == "upstream_unavailable"
    assert result.error is not None
    assert result.error.retryable is True
    assert emulator.faults.injected == 3 * 2  # 3 in-call attempts per try, 2 tries


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(endpoint="calendarList.list", error_rate=1, error_status=500),
        FaultRule(endpoint="calendarList.list", error_rate=1, error_status=429),
        FaultRule(endpoint="calendarList.list", reset_rate=1),
    ],
    ids=["500", "429", "reset"],
)
async def test_one_retry_budget_bounds_the_requests_of_a_failing_job(
    pipe: Pipeline, rule: FaultRule
) -> None:
    pipe.emulator.faults.add(rule)
    result = await pipe.run("list_calendars", {"user_id": "u1"})
    assert result.error is not None
    assert result.error.retryable
    # In-call retries and deferrals spend from one budget: 1 request + 7 retries, never 3 x 8.
    assert pipe.emulator.faults.injected == 1 + pipe.settings.job_retry_budget
    assert await pipe.redis.exists(pipe.keys.retries_spent(result.job_id)) == 0


async def test_each_failed_request_costs_exactly_one_more(pipe: Pipeline) -> None:
    pipe.emulator.faults.add(FaultRule(endpoint="calendarList.list", error_rate=0.05))
    jobs = 200
    results = await asyncio.gather(
        *(pipe.run("list_calendars", {"user_id": "u1"}) for _ in range(jobs))
    )
    assert all(result.ok for result in results)
    answered = pipe.emulator.store.requests["calendarList.list"]  # the faults not counted
    assert answered == jobs  # each failed request was retried exactly once, no more
    assert (answered + pipe.emulator.faults.injected) / jobs < 1.15  # ~1.05 at a 5% rate


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(endpoint="calendarList.list", malformed_rate=1, count=1),
        FaultRule(endpoint="calendarList.list", truncate_rate=1, count=1),
        FaultRule(endpoint="calendarList.list", reset_rate=1, count=2),
    ],
    ids=["malformed", "truncated", "reset"],
)
async def test_broken_responses_are_retried_not_crashes(pipe: Pipeline, rule: FaultRule) -> None:
    pipe.emulator.faults.add(rule)
    result = await pipe.run("list_calendars", {"user_id": "u1"})
    assert result.ok, result


async def test_a_google_timeout_is_retried(
    emulator: Emulator, redis: Redis, redis_prefix: str
) -> None:
    async with pipeline(emulator, redis, redis_prefix, http_timeout=0.2) as p:
        await p.link("u1")
        await p.start_worker()
        emulator.faults.add(FaultRule(endpoint="calendarList.list", latency_ms=1000, count=1))
        result = await p.run("list_calendars", {"user_id": "u1"})
    assert result.ok, result


# Delivery semantics ------------------------------------------------------------------------------


async def test_the_idempotency_key_alone_decides_the_event_never_a_given_id(
    pipe: Pipeline,
) -> None:
    def create(key: str, event_id: str) -> dict[str, Any]:
        return {"user_id": "u1", "idempotency_key": key, "event": {**EVENT, "id": event_id}}

    first = await pipe.run("create_event", create("order-1", "callerchosen0001"))
    same_key = await pipe.run("create_event", create("order-1", "callerchosen0002"))
    other_key = await pipe.run("create_event", create("order-2", "callerchosen0001"))
    assert first.data is not None
    assert same_key.data is not None
    assert other_key.data is not None
    # One key, one event, whatever id the event names; another key is another event.
    assert (first.data["created"], same_key.data["created"]) == (True, False)
    assert same_key.data["event"]["id"] == first.data["event"]["id"] != "callerchosen0001"
    assert other_key.data["created"] is True
    assert other_key.data["event"]["id"] != first.data["event"]["id"]
    assert len(events_in(pipe)) == 2


async def test_a_rerun_of_update_event_accepts_its_own_change(pipe: Pipeline) -> None:
    created = await pipe.run("create_event", {"user_id": "u1", "event": EVENT})
    assert created.data is not None
    event = created.data["event"]
    args = {
        "user_id": "u1",
        "event_id": event["id"],
        "patch": {"summary": "Renamed"},
        "etag": event["etag"],
    }
    assert (await pipe.run("update_event", args)).ok
    # The same job again, as arq re-runs it after a crash lost the first answer (try 2).
    job_id = uuid.uuid4().hex
    await pipe.arq.enqueue_job("update_event", _job_id=job_id, _job_try=2, **args)
    rerun = await pipe.client.result(job_id, timeout=10)
    # A different change on top of a stale etag is still refused on a re-run.
    other = {**args, "patch": {"summary": "Something else"}}
    other_id = uuid.uuid4().hex
    await pipe.arq.enqueue_job("update_event", _job_id=other_id, _job_try=2, **other)
    conflict = await pipe.client.result(other_id, timeout=10)
    assert rerun.ok, rerun
    assert rerun.data is not None
    assert rerun.data["event"]["summary"] == "Renamed"
    assert error(conflict) == "precondition_failed"


async def test_arguments_that_are_not_an_object_get_a_result(pipe: Pipeline) -> None:
    job_id = uuid.uuid4().hex
    payload = {"t": 1, "f": "list_calendars", "a": [], "k": ["u1"], "et": int(time.time() * 1000)}
    await pipe.redis.set(f"arq:job:{job_id}", json.dumps(payload))
    await pipe.redis.zadd(pipe.keys.queue, {job_id: int(time.time() * 1000)})
    result = await pipe.client.result(job_id, timeout=10)
    assert error(result) == "invalid_request"
    assert pipe.emulator.store.requests["calendarList.list"] == 0


async def test_enqueueing_a_finished_job_id_again_does_not_run_it_again(pipe: Pipeline) -> None:
    job_id = uuid.uuid4().hex
    first = await pipe.client.run("list_calendars", {"user_id": "u1"}, job_id=job_id, timeout=10)
    # arq forgets its own copy of the result after 5 minutes; ours lasts 24 h.
    await pipe.redis.delete(f"arq:result:{job_id}")
    again = await pipe.client.run("list_calendars", {"user_id": "u1"}, job_id=job_id, timeout=10)
    assert again == first
    assert pipe.emulator.store.requests["calendarList.list"] == 1


async def test_a_jobs_events_are_not_held_while_its_result_is_written(
    pipe: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under load a job can wait long for Redis to take its result; all it should hold then is
    # the encoded result, not the page of events it was made from as well (twice the memory).
    assert (await pipe.run("create_event", {"user_id": "u1", "event": EVENT})).ok
    alive_at_write: list[int] = []
    execute = RedisPipeline.execute

    async def watched(self: RedisPipeline, raise_on_error: bool = True) -> list[Any]:
        writes_a_result = any(
            args[0] == "SET" and str(args[1]).startswith(pipe.keys.result(""))
            for args, _ in self.command_stack
        )
        if writes_a_result:
            alive_at_write.append(
                sum(isinstance(o, JobResult) and o.job == "get_events" for o in gc.get_objects())
            )
        return await execute(self, raise_on_error)

    monkeypatch.setattr(RedisPipeline, "execute", watched)
    window = {"time_min": "2026-12-01T00:00:00Z", "time_max": "2026-12-02T00:00:00Z"}
    result = await pipe.run("get_events", {"user_id": "u1", **window})
    assert result.data is not None
    assert [e["summary"] for e in result.data["events"]] == ["Planning"]
    assert alive_at_write == [0]


# Projections ----------------------------------------------------------------------------------


async def test_get_events_basic_projection_returns_only_the_basic_fields(pipe: Pipeline) -> None:
    event = {**EVENT, "location": "Room 1", "attendees": [{"email": "bob@example.com"}]}
    assert (await pipe.run("create_event", {"user_id": "u1", "event": event})).ok
    window = {
        "user_id": "u1",
        "time_min": "2026-12-01T00:00:00Z",
        "time_max": "2026-12-02T00:00:00Z",
    }
    basic = await pipe.run("get_events", {**window, "projection": "basic"})
    full = await pipe.run("get_events", {**window, "projection": "full"})
    assert basic.data is not None
    assert full.data is not None
    allowed = {
        "id", "status", "eventType", "summary", "location", "start", "end", "recurringEventId",
        "originalStartTime", "updated", "etag", "htmlLink", "attendees", "organizer",
    }  # fmt: skip
    [projected] = basic.data["events"]
    assert set(projected) <= allowed, set(projected) - allowed
    assert not {"creator", "iCalUID", "kind", "created", "sequence"} & set(projected)
    assert projected["attendees"] == [{"email": "bob@example.com", "responseStatus": "needsAction"}]
    assert projected["organizer"] == {"email": pipe.email}
    assert basic.data["time_zone"] == full.data["time_zone"]
    [whole] = full.data["events"]
    assert whole["iCalUID"] == f"{whole['id']}@google.com"
    assert {k: whole[k] for k in projected if k not in ("attendees", "organizer")} == {
        k: v for k, v in projected.items() if k not in ("attendees", "organizer")
    }
