"""The notification family: one typed model per ``type``, one writer of the stream and channel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from fakeredis.aioredis import FakeRedis
from pydantic import ValidationError

from gcal.keys import RedisKeys
from gcal.notifications import (
    NOTIFICATION_TYPES,
    AuthLinked,
    AuthRequired,
    AuthRevoked,
    AuthScopeMissing,
    JobCompleted,
    Notification,
    Notifier,
    notification_type,
    parse_notification,
)

KEYS = RedisKeys("unit")
EXAMPLES: list[Notification] = [
    AuthLinked(user_id="u1", email="a@example.com", scopes=["s1"]),
    AuthScopeMissing(user_id="u1", scopes=[], missing_scopes=["s1"]),
    AuthRevoked(user_id="u1"),
    AuthRequired(user_id="u1", reason="tokens_unreadable"),
    JobCompleted(job_id="j1", job="get_events", ok=False, error_code="gone", result_key="k"),
]


@pytest.fixture
async def redis() -> AsyncIterator[FakeRedis]:
    client = FakeRedis()
    yield client
    await client.aclose()


@pytest.mark.parametrize("note", EXAMPLES, ids=lambda n: n.type)
def test_each_type_round_trips_as_itself(note: Notification) -> None:
    assert parse_notification(note.to_json()) == note


def test_types_are_distinct_and_carry_only_their_own_fields() -> None:
    tags = [notification_type(model) for model in NOTIFICATION_TYPES]
    assert len(tags) == len(set(tags))
    with pytest.raises(ValidationError):  # a field of another type is refused
        parse_notification(json.dumps({"type": "auth_revoked", "user_id": "u1", "scopes": []}))
    with pytest.raises(ValidationError):
        parse_notification(json.dumps({"type": "no_such_type", "user_id": "u1"}))


async def test_the_notifier_writes_the_stream_then_every_channel(redis: FakeRedis) -> None:
    async with redis.pubsub() as pubsub:
        await pubsub.subscribe(KEYS.notifications, "extra")
        await Notifier(redis, KEYS).publish(EXAMPLES[0], channels=["extra"])
        heard = []
        async for message in pubsub.listen():
            if message["type"] == "message":
                heard.append(message["channel"])
                if len(heard) == 2:
                    break
    assert heard == [b"extra", KEYS.notifications.encode()]
    [(_, fields)] = await redis.xrange(KEYS.notification_stream)
    assert fields[b"type"] == b"auth_linked"
    assert parse_notification(fields[b"json"]) == EXAMPLES[0]
