"""The token store against real Redis and the emulator's token endpoint: refresh ahead of
expiry, single-flight refresh across processes, revocation, transient failures, key rotation."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TypeVar
from unittest.mock import ANY

import aiohttp
import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from emulator.config import ClientConfig
from emulator.faults import FaultRule, Hold
from gcal.accounts import Accounts
from gcal.crypto import Cipher, generate_key
from gcal.errors import AuthRequired, AuthRevoked, UpstreamUnavailable
from gcal.keys import RedisKeys
from gcal.oauth import TokenGrant
from gcal.services import Services
from gcal.settings import Settings
from gcal.tokens import Rotation, StoredTokens, TokenStore
from tests.harness import Emulator
from tests.services import CLIENT_ID, CLIENT_SECRET

EVENTS_SCOPE = "https://www.googleapis.com/auth/calendar.events"
T = TypeVar("T")


@dataclass
class Env:
    accounts: Accounts
    emulator: Emulator
    redis: Redis
    keys: RedisKeys
    key: str
    settings: Settings

    @property
    def store(self) -> TokenStore:
        return self.accounts.store

    def store_with(self, cipher: Cipher) -> TokenStore:
        """Another process's view of the same store, with its own keys."""
        return TokenStore(self.redis, self.keys, cipher)


@pytest.fixture
async def env(
    emulator: Emulator, redis: Redis, redis_url: str, redis_prefix: str
) -> AsyncIterator[Env]:
    emulator.store.clients[CLIENT_ID] = ClientConfig(CLIENT_ID, CLIENT_SECRET, ("http://x/cb",))
    key = generate_key()
    settings = Settings(
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        token_endpoint=f"{emulator.url}/token",  # type: ignore[arg-type]
        revoke_endpoint=f"{emulator.url}/revoke",  # type: ignore[arg-type]
        token_keys=(SecretStr(key),),
        api_keys=(SecretStr("unused-here"),),
        redis_url=redis_url,  # type: ignore[arg-type]
        redis_prefix=redis_prefix,
        scopes=(EVENTS_SCOPE,),
    )
    async with aiohttp.ClientSession() as http:
        services = Services.build(settings, redis, http)
        yield Env(services.accounts, emulator, redis, services.keys, key, settings)


def grant_of(
    access: str, refresh: str, email: str = "alice@example.com", *, expires_in: float = 3600
) -> TokenGrant:
    """What the token endpoint would have granted for these emulator-issued tokens."""
    return TokenGrant(
        access_token=SecretStr(access),
        refresh_token=SecretStr(refresh),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in),
        scopes=frozenset({EVENTS_SCOPE}),
        email=email,
    )


async def link_stale(env: Env, user_id: str = "u1", *, expires_in: float = 10) -> StoredTokens:
    """Link ``user_id`` with emulator-issued tokens whose access token expires soon."""
    access, refresh = env.emulator.grant("alice@example.com", (EVENTS_SCOPE,), client_id=CLIENT_ID)
    return await env.accounts.link(user_id, grant_of(access, refresh, expires_in=expires_in))


async def test_fresh_token_is_returned_without_calling_google(env: Env) -> None:
    linked = await link_stale(env, expires_in=3600)
    assert await env.accounts.access_token("u1") == linked.access_token
    assert env.emulator.store.requests["oauth.token"] == 0


async def test_token_near_expiry_is_refreshed_and_the_refresh_token_kept(env: Env) -> None:
    linked = await link_stale(env, expires_in=10)
    token = await env.accounts.access_token("u1")
    assert token != linked.access_token
    assert env.emulator.store.valid_access_token(token) is not None
    stored = await env.store.get("u1")
    assert stored is not None
    assert stored.refresh_token == linked.refresh_token
    assert stored.expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50)
    assert env.emulator.store.requests["oauth.token.refresh_token"] == 1


async def test_a_rejected_token_is_refreshed_once_even_if_not_expired(env: Env) -> None:
    linked = await link_stale(env, expires_in=3600)
    first = await env.accounts.access_token("u1", rejected=linked.access_token)
    second = await env.accounts.access_token("u1", rejected=linked.access_token)
    assert first == second != linked.access_token
    assert env.emulator.store.requests["oauth.token.refresh_token"] == 1


async def test_concurrent_callers_in_one_process_cause_one_refresh(env: Env) -> None:
    await link_stale(env)
    tokens = await asyncio.gather(*(env.accounts.access_token("u1") for _ in range(50)))
    assert len(set(tokens)) == 1
    assert env.emulator.store.requests["oauth.token.refresh_token"] == 1


async def test_callers_in_several_processes_cause_exactly_one_refresh(env: Env) -> None:
    await link_stale(env)
    config = json.dumps(
        {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_endpoint": str(env.settings.token_endpoint),
            "key": env.key,
            "prefix": env.settings.redis_prefix,
            "redis_url": str(env.settings.redis_url),
            "user_id": "u1",
            "callers": 25,
        }
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.refresh_racer", config, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(4)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 60)
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    seen = {token for out, _ in outputs for token in json.loads(out)}
    assert len(seen) == 1
    assert env.emulator.store.requests["oauth.token.refresh_token"] == 1


async def test_revoked_grant_purges_tokens_marks_reconsent_and_announces(env: Env) -> None:
    await link_stale(env)
    env.emulator.store.revoke_grant("alice@example.com")
    with pytest.raises(AuthRevoked):
        await env.accounts.access_token("u1")
    assert await env.store.get("u1") is None
    assert await env.accounts.reconsent_reason("u1") == "auth_revoked"
    with pytest.raises(AuthRevoked):  # later calls fail fast, without asking Google
        await env.accounts.access_token("u1")
    assert env.emulator.store.requests["oauth.token.refresh_token"] == 1
    stream = await env.redis.xrange(env.keys.notification_stream)
    announced = json.loads(stream[-1][1][b"json"])
    assert announced["type"] == "auth_revoked"
    assert announced["user_id"] == "u1"


async def test_transient_token_endpoint_failure_is_retryable_not_a_revocation(env: Env) -> None:
    linked = await link_stale(env)
    env.emulator.faults.add(FaultRule(endpoint="oauth.token", error_rate=1.0, error_status=503))
    with pytest.raises(UpstreamUnavailable) as info:
        await env.accounts.access_token("u1")
    assert info.value.retryable
    assert env.emulator.faults.injected == 3
    stored = await env.store.get("u1")
    assert stored is not None
    assert stored.refresh_token == linked.refresh_token
    assert await env.accounts.reconsent_reason("u1") is None


async def test_unlinked_user_needs_auth(env: Env) -> None:
    with pytest.raises(AuthRequired) as info:
        await env.accounts.access_token("nobody")
    assert info.value.code == "auth_required"


async def test_reencrypt_moves_every_token_set_to_the_newest_key(env: Env) -> None:
    for user in ("u1", "u2", "u3"):
        await link_stale(env, user, expires_in=3600)
    new_key = generate_key()
    rotated = Cipher([new_key, env.key])
    assert await env.store_with(rotated).rotate_all() == Rotation(changed=3)
    assert await env.store_with(rotated).rotate_all() == Rotation(changed=0)
    only_new = env.store_with(Cipher([new_key]))
    for user in ("u1", "u2", "u3"):
        assert await only_new.get(user) is not None


async def test_disconnect_revokes_at_google_and_forgets_the_user(env: Env) -> None:
    linked = await link_stale(env, expires_in=3600)
    assert await env.accounts.disconnect("u1") is True
    assert env.emulator.store.valid_access_token(linked.access_token) is None
    assert linked.refresh_token not in env.emulator.store.refresh_tokens
    assert await env.store.get("u1") is None
    stream = await env.redis.xrange(env.keys.notification_stream)
    assert json.loads(stream[-1][1][b"json"])["type"] == "auth_disconnected"
    assert await env.accounts.disconnect("u1") is False  # idempotent
    assert env.emulator.store.requests["oauth.revoke"] == 1


async def test_disconnect_keeps_tokens_when_google_is_unreachable(env: Env) -> None:
    await link_stale(env, expires_in=3600)
    env.emulator.faults.add(FaultRule(endpoint="oauth.revoke", error_rate=1.0, error_status=503))
    with pytest.raises(UpstreamUnavailable):
        await env.accounts.disconnect("u1")
    assert await env.store.get("u1") is not None


async def seal_with_a_lost_key(env: Env, user_id: str = "u1") -> str:
    """Re-seal the user's stored tokens under a key this service does not have (a rotation
    done out of order); the lost key."""
    tokens = await env.store.get(user_id)
    assert tokens is not None
    lost = generate_key()
    await env.store_with(Cipher([lost])).put(user_id, tokens)
    return lost


def announced(stream: list[tuple[bytes, dict[bytes, bytes]]]) -> list[dict[str, object]]:
    return [json.loads(fields[b"json"]) for _, fields in stream]


async def test_undecryptable_tokens_need_reconsent_announced_once(env: Env) -> None:
    await link_stale(env, expires_in=3600)
    await seal_with_a_lost_key(env)
    kept = await env.redis.get(env.keys.tokens("u1"))
    for _ in range(3):
        with pytest.raises(AuthRequired) as info:
            await env.accounts.access_token("u1")
        assert info.value.code == "auth_required"
        assert "cannot be decrypted" in info.value.message
        assert "link their account again" in info.value.message
    assert await env.accounts.reconsent_reason("u1") == "tokens_unreadable"
    notes = announced(await env.redis.xrange(env.keys.notification_stream))
    assert [(n["type"], n.get("reason")) for n in notes] == [
        ("auth_linked", None),
        ("auth_required", "tokens_unreadable"),
    ]
    assert notes[1]["user_id"] == "u1"
    # Kept as it was, for an operator who can still restore the key.
    assert await env.redis.get(env.keys.tokens("u1")) == kept
    assert env.emulator.store.requests["oauth.token"] == 0


async def test_restoring_the_lost_key_brings_the_user_back(env: Env) -> None:
    linked = await link_stale(env, expires_in=3600)
    lost = await seal_with_a_lost_key(env)
    with pytest.raises(AuthRequired):
        await env.accounts.access_token("u1")
    settings = env.settings.model_copy(update={"token_keys": (SecretStr(env.key), SecretStr(lost))})
    async with aiohttp.ClientSession() as http:
        restored = Services.build(settings, env.redis, http).accounts
        assert await restored.access_token("u1") == linked.access_token


async def test_linking_again_replaces_undecryptable_tokens(env: Env) -> None:
    await link_stale(env, expires_in=3600)
    await seal_with_a_lost_key(env)
    with pytest.raises(AuthRequired):
        await env.accounts.access_token("u1")
    relinked = await link_stale(env, expires_in=3600)
    assert await env.accounts.access_token("u1") == relinked.access_token
    assert await env.accounts.reconsent_reason("u1") is None
    notes = announced(await env.redis.xrange(env.keys.notification_stream))
    assert [n["type"] for n in notes] == ["auth_linked", "auth_required", "auth_linked"]


async def test_reencrypt_leaves_undecryptable_tokens_and_says_so(env: Env) -> None:
    await link_stale(env, "u1", expires_in=3600)
    await link_stale(env, "u2", expires_in=3600)
    await seal_with_a_lost_key(env, "u2")
    kept = await env.redis.get(env.keys.tokens("u2"))
    new_key = generate_key()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gcal",
        "reencrypt-tokens",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={
            **os.environ,
            "GCAL_DEV_MODE": "true",
            "GCAL_TOKEN_KEYS": json.dumps([new_key, env.key]),
            "GCAL_REDIS_URL": str(env.settings.redis_url),
            "GCAL_REDIS_PREFIX": env.settings.redis_prefix,
        },
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 1
    assert "re-encrypted 1 token sets" in out.decode()
    assert "1 token sets open with none of GCAL_TOKEN_KEYS" in err.decode()
    assert await env.store_with(Cipher([new_key])).get("u1") is not None
    assert await env.redis.get(env.keys.tokens("u2")) == kept


async def test_reencrypt_command_rotates_stored_tokens(env: Env) -> None:
    await link_stale(env, "u1", expires_in=3600)
    new_key = (await run_gcal("new-key")).strip()
    env_vars = {
        "GCAL_DEV_MODE": "true",
        "GCAL_TOKEN_KEYS": json.dumps([new_key, env.key]),
        "GCAL_REDIS_URL": str(env.settings.redis_url),
        "GCAL_REDIS_PREFIX": env.settings.redis_prefix,
    }
    assert "re-encrypted 1 token sets" in await run_gcal("reencrypt-tokens", env_vars)
    assert await env.store_with(Cipher([new_key])).get("u1") is not None


async def run_gcal(command: str, env_vars: dict[str, str] | None = None) -> str:
    """Run ``python -m gcal COMMAND`` in a child process; its stdout."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gcal",
        command,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, **(env_vars or {})},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
    return out.decode()


# Races: each writer's change survives the others -------------------------------------------


async def in_flight(env: Env, endpoint: str, call: Awaitable[T]) -> tuple[Hold, asyncio.Task[T]]:
    """Start ``call`` and return once its request to ``endpoint`` waits at the emulator."""
    hold = env.emulator.faults.hold(endpoint)
    task = asyncio.ensure_future(call)
    await asyncio.wait_for(hold.reached(), 5)
    return hold, task


async def test_a_refresh_of_the_old_grant_never_overwrites_a_new_link(env: Env) -> None:
    await link_stale(env)
    hold, refreshing = await in_flight(env, "oauth.token", env.accounts.access_token("u1"))
    relinked = await link_stale(env, expires_in=3600)  # needs no lock, waits for nothing
    hold.release()
    # The refresh's result was dropped: the caller gets the new link's token.
    assert await refreshing == relinked.access_token
    stored = await env.store.get("u1")
    assert stored == relinked
    assert env.emulator.store.requests["oauth.token.refresh_token"] == 1
    notes = announced(await env.redis.xrange(env.keys.notification_stream))
    assert [n["type"] for n in notes] == ["auth_linked", "auth_linked"]


async def test_google_refusing_the_old_grant_never_purges_a_new_link(env: Env) -> None:
    await link_stale(env)
    hold, refreshing = await in_flight(env, "oauth.token", env.accounts.access_token("u1"))
    # The user revokes access at Google, then links again, while the refresh is in flight.
    env.emulator.store.revoke_grant("alice@example.com")
    relinked = await link_stale(env, expires_in=3600)
    hold.release()
    assert await refreshing == relinked.access_token
    assert await env.store.get("u1") == relinked
    assert await env.accounts.reconsent_reason("u1") is None
    notes = announced(await env.redis.xrange(env.keys.notification_stream))
    assert [n["type"] for n in notes] == ["auth_linked", "auth_linked"]


async def test_a_stale_new_link_is_refreshed_in_turn(env: Env) -> None:
    await link_stale(env)
    hold, refreshing = await in_flight(env, "oauth.token", env.accounts.access_token("u1"))
    relinked = await link_stale(env, expires_in=10)  # this one needs a refresh as well
    hold.release()
    token = await refreshing
    stored = await env.store.get("u1")
    assert stored is not None
    assert token == stored.access_token != relinked.access_token
    assert stored.refresh_token == relinked.refresh_token
    assert env.emulator.store.valid_access_token(token) is not None
    assert env.emulator.store.requests["oauth.token.refresh_token"] == 2


async def test_a_link_landing_during_disconnect_is_revoked_and_forgotten_too(env: Env) -> None:
    old = await link_stale(env, expires_in=3600)
    hold, disconnecting = await in_flight(env, "oauth.revoke", env.accounts.disconnect("u1"))
    # Meanwhile the user links another Google account.
    access, refresh = env.emulator.grant("bob@example.com", (EVENTS_SCOPE,), client_id=CLIENT_ID)
    await env.accounts.link("u1", grant_of(access, refresh, "bob@example.com"))
    hold.release()
    assert await disconnecting is True
    assert await env.store.get("u1") is None
    # Nothing stays alive at Google that the service forgot about.
    for token in (old.refresh_token, refresh):
        assert token not in env.emulator.store.refresh_tokens
    assert env.emulator.store.requests["oauth.revoke"] == 2
    notes = announced(await env.redis.xrange(env.keys.notification_stream))
    assert [(n["type"], n.get("email")) for n in notes] == [
        ("auth_linked", "alice@example.com"),
        ("auth_linked", "bob@example.com"),
        ("auth_disconnected", "bob@example.com"),
    ]


async def test_disconnect_forgets_tokens_that_cannot_be_decrypted(env: Env) -> None:
    await link_stale(env, expires_in=3600)
    await seal_with_a_lost_key(env)
    assert await env.accounts.disconnect("u1") is True
    assert await env.redis.get(env.keys.tokens("u1")) is None
    assert env.emulator.store.requests["oauth.revoke"] == 0  # nothing it could revoke
    notes = announced(await env.redis.xrange(env.keys.notification_stream))
    assert notes[-1] == {"type": "auth_disconnected", "user_id": "u1", "at": ANY}


# Re-linking to another Google account ---------------------------------------------------------


def identified(grant: TokenGrant, email: str, env: Env) -> TokenGrant:
    """``grant`` with the account id Google's ID token would have carried."""
    return grant.model_copy(update={"sub": env.emulator.store.account(email).sub})


async def link_as(env: Env, email: str, *, sub: bool = True) -> StoredTokens:
    access, refresh = env.emulator.grant(email, (EVENTS_SCOPE,), client_id=CLIENT_ID)
    grant = grant_of(access, refresh, email)
    return await env.accounts.link("u1", identified(grant, email, env) if sub else grant)


async def test_a_failed_revocation_of_the_replaced_grant_does_not_undo_the_link(
    env: Env,
) -> None:
    await link_as(env, "alice@example.com")
    env.emulator.faults.add(FaultRule(endpoint="oauth.revoke", error_rate=1.0, error_status=503))
    bob = await link_as(env, "bob@example.com")
    assert env.emulator.faults.injected == 3  # tried, with the in-call retries
    assert await env.store.get("u1") == bob
    assert await env.accounts.access_token("u1") == bob.access_token


async def test_tokens_linked_before_the_account_id_was_kept_are_not_revoked(env: Env) -> None:
    alice = await link_as(env, "alice@example.com", sub=False)
    bob = await link_as(env, "bob@example.com")
    # Whose grant it was cannot be told; revoking might kill the new tokens, so it stays.
    assert env.emulator.store.requests["oauth.revoke"] == 0
    assert alice.refresh_token in env.emulator.store.refresh_tokens
    assert await env.store.get("u1") == bob


async def test_the_email_is_kept_across_a_relink_of_the_same_account_only(env: Env) -> None:
    await link_as(env, "alice@example.com")
    for email, kept in (("alice@example.com", "alice@example.com"), ("bob@example.com", None)):
        access, refresh = env.emulator.grant(email, (EVENTS_SCOPE,), client_id=CLIENT_ID)
        no_email = grant_of(access, refresh, email).model_copy(update={"email": None})
        linked = await env.accounts.link("u1", identified(no_email, email, env))
        assert linked.email == kept


async def test_a_field_added_by_a_newer_version_does_not_make_tokens_unreadable(
    env: Env,
) -> None:
    linked = await link_stale(env, expires_in=3600)
    newer = {**linked.model_dump(mode="json"), "added_later": "x"}
    await env.redis.set(env.keys.tokens("u1"), Cipher([env.key]).seal("tokens", "u1", newer))
    assert await env.accounts.access_token("u1") == linked.access_token
    assert await env.accounts.reconsent_reason("u1") is None
