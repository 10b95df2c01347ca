"""Every entry point as an operator runs it: ``--help``, bad configuration as one line per
setting (exit 2, never a traceback, never a value), Redis-only commands that need nothing
but Redis settings, and the key rotation's progress.

Each command runs as a child process with only the ``GCAL_*`` variables the test gives it.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from gcal.crypto import Cipher, generate_key
from gcal.keys import RedisKeys
from gcal.tokens import StoredTokens, TokenStore

ENTRY_POINTS = ("worker", "auth_web", "gcal", "jobs", "emulator", "devstack", "bench")


def bare_env(**gcal: str) -> dict[str, str]:
    """This environment without any GCAL_* variable, plus ``gcal``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GCAL_")}
    env.update(gcal)
    return env


async def run(
    *argv: str, env: dict[str, str], stdin: bytes | None = None, within: float = 60
) -> tuple[int, str, str]:
    """``python -m ARGV``: exit status, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *argv,
        env=env,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), within)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_every_entry_point_answers_help_without_configuration() -> None:
    answers = await asyncio.gather(*(run(name, "--help", env=bare_env()) for name in ENTRY_POINTS))
    for name, (code, out, err) in zip(ENTRY_POINTS, answers, strict=True):
        assert code == 0, f"{name}: {err}"
        assert out.startswith(f"usage: python -m {name}"), out
        assert "Traceback" not in err


async def test_bad_settings_are_one_line_each_naming_the_variable() -> None:
    env = bare_env(
        GCAL_DEV_MODE="true",
        GCAL_STATE_TTL="5",
        GCAL_LOG_FORMAT="yaml",
        GCAL_REDIS_PREFIX="has:colon-Quagmire",
    )
    code, out, err = await run("worker", env=env)
    assert code == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 3, err
    assert all(line.startswith("python -m worker: bad configuration: GCAL_") for line in lines)
    assert {line.split(": ")[2] for line in lines} == {
        "GCAL_STATE_TTL",
        "GCAL_LOG_FORMAT",
        "GCAL_REDIS_PREFIX",
    }
    assert "Quagmire" not in err  # the value itself is never printed


async def test_missing_secrets_and_unparsable_lists_name_their_variable() -> None:
    code, _, err = await run("auth_web", env=bare_env())
    assert code == 2
    assert err.splitlines() == [
        "python -m auth_web: bad configuration: client_id is not set (GCAL_CLIENT_ID); "
        "only dev mode may omit it"
    ]
    code, _, err = await run(
        "worker", env=bare_env(GCAL_DEV_MODE="true", GCAL_API_KEYS="[no-json-Pangolin")
    )
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "GCAL_API_KEYS" in err
    assert "Pangolin" not in err


async def test_redis_only_commands_need_only_redis_settings(redis_url: str) -> None:
    # No OAuth client, no API keys, not dev mode: the probe runs (no worker here: exit 1).
    code, _, err = await run("worker", "--check", env=bare_env(GCAL_REDIS_URL=redis_url))
    assert code == 1, err
    assert "bad configuration" not in err
    assert "no live worker" in err
    # A bad Redis setting still is one.
    code, _, err = await run("worker", "--check", env=bare_env(GCAL_REDIS_URL="http://x"))
    assert code == 2
    assert "GCAL_REDIS_URL" in err


async def test_reencrypt_tokens_needs_only_redis_and_keys_and_shows_progress(
    redis: Redis, redis_url: str, redis_prefix: str
) -> None:
    old, new = generate_key(), generate_key()
    keys = RedisKeys(redis_prefix)
    store = TokenStore(redis, keys, Cipher([old]))
    tokens = StoredTokens(
        access_token="ya29.a",
        refresh_token="1//r",
        expires_at="2026-12-01T10:00:00Z",  # type: ignore[arg-type]
        scopes=frozenset(),
        linked_at="2026-11-01T10:00:00Z",  # type: ignore[arg-type]
    )
    sealed = store.seal("u0", tokens)  # one token set, copied under 1,100 users' keys
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(1100):
            pipe.set(keys.tokens(f"u{n}"), store.seal(f"u{n}", tokens) if n < 3 else sealed)
        await pipe.execute()

    env = bare_env(
        GCAL_REDIS_URL=redis_url, GCAL_REDIS_PREFIX=redis_prefix, GCAL_TOKEN_KEYS=f'["{new}"]'
    )
    code, out, err = await run("gcal", "reencrypt-tokens", env=env)
    assert code == 1  # the old key is not configured: nothing can be opened
    assert "1100 token sets open with none of GCAL_TOKEN_KEYS" in err
    assert "add the missing key back" in err
    assert "Traceback" not in err
    env["GCAL_TOKEN_KEYS"] = f'["{new}", "{old}"]'
    code, out, err = await run("gcal", "reencrypt-tokens", env=env)
    assert code == 0, err
    assert out == "re-encrypted 1100 token sets under the current key\n"
    progress = [line for line in err.splitlines() if "token sets checked" in line]
    assert progress[:2] == [
        "reencrypt-tokens: 500 token sets checked, 499 re-encrypted so far",
        "reencrypt-tokens: 1000 token sets checked, 999 re-encrypted so far",
    ]
    rotated = TokenStore(redis, keys, Cipher([SecretStr(new)]))
    assert await rotated.get("u2") == tokens


async def test_reencrypt_tokens_without_keys_is_a_configuration_error(redis_url: str) -> None:
    code, _, err = await run("gcal", "reencrypt-tokens", env=bare_env(GCAL_REDIS_URL=redis_url))
    assert code == 2
    assert err.splitlines() == ["python -m gcal: bad configuration: GCAL_TOKEN_KEYS is not set"]


@pytest.mark.parametrize("argv", [("worker",), ("auth_web",), ("jobs", "watch")])
async def test_the_log_settings_are_checked_by_every_command(argv: tuple[str, ...]) -> None:
    code, _, err = await run(*argv, env=bare_env(GCAL_DEV_MODE="true", GCAL_LOG_LEVEL="chatty"))
    assert code == 2
    assert "GCAL_LOG_LEVEL" in err


async def test_a_taken_metrics_port_stops_the_worker_with_one_line(
    redis_url: str, redis_prefix: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = bare_env(
            GCAL_DEV_MODE="true",
            GCAL_REDIS_URL=redis_url,
            GCAL_REDIS_PREFIX=redis_prefix,
            GCAL_LOG_FORMAT="json",
            GCAL_WORKER_METRICS_PORT=str(taken.getsockname()[1]),
        )
        code, _, err = await run("worker", env=env)
    assert code == 2
    lines = err.splitlines()
    refusal = [line for line in lines if line.startswith("python -m worker: bad configuration")]
    assert len(refusal) == 1, err
    assert "GCAL_WORKER_METRICS_PORT: cannot listen on 127.0.0.1:" in refusal[0]
    assert "Traceback" not in err
    logged = [json.loads(line) for line in lines if line not in refusal]  # the rest is JSON
    assert logged, err
    assert {"time", "level", "logger", "message"} <= set(logged[0])
