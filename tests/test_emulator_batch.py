"""Batch requests: multipart/mixed parsing, per-part dispatch, and the multipart answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import aiohttp
import pytest

from emulator.config import QuotaConfig
from emulator.faults import FaultRule
from tests.conftest import MakeEmulator
from tests.harness import Emulator


@dataclass
class Answer:
    content_id: str | None
    status: int
    headers: dict[str, str]
    body: Any


def _part(
    content_id: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    eol: str = "\n",
) -> str:
    """One application/http part as googleapiclient writes it (LF line endings by default)."""
    payload = json.dumps(body) if body is not None else ""
    inner = [f"{method} /calendar/v3/{path} HTTP/1.1"]
    if body is not None:
        inner += ["Content-Type: application/json", f"content-length: {len(payload)}"]
    inner += [f"{k}: {v}" for k, v in (headers or {}).items()]
    head = [
        "Content-Type: application/http",
        "MIME-Version: 1.0",
        "Content-Transfer-Encoding: binary",
        f"Content-ID: <{content_id}>",
    ]
    return eol.join(head) + eol + eol + eol.join(inner) + eol + eol + payload


def _multipart(parts: list[str], boundary: str = "===============7330845974216740156==") -> bytes:
    chunks = [f"--{boundary}\n{part}\n" for part in parts]
    return ("".join(chunks) + f"--{boundary}--\n").encode()


async def _post(
    emu: Emulator,
    body: bytes,
    *,
    access: str | None = None,
    content_type: str = 'multipart/mixed; boundary="===============7330845974216740156=="',
) -> tuple[int, str, bytes]:
    headers = {"Content-Type": content_type}
    if access:
        headers["Authorization"] = f"Bearer {access}"
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emu.url}/batch/calendar/v3", data=body, headers=headers) as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


def _answers(content_type: str, body: bytes) -> list[Answer]:
    """Parse a batch answer the way googleapiclient does (email parser + CRLF CRLF split)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    answers = []
    for part in message.iter_parts():
        assert part.get_content_type() == "application/http"
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        status_line, rest = payload.split(b"\r\n", 1)
        head, content = rest.split(b"\r\n\r\n", 1)
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n") if line)
        answers.append(
            Answer(
                content_id=part["Content-ID"],
                status=int(status_line.split()[1]),
                headers=headers,
                body=json.loads(content) if content else None,
            )
        )
    return answers


def _watch(channel_id: str) -> dict[str, Any]:
    return {"id": channel_id, "type": "web_hook", "address": "http://127.0.0.1:9/hook"}


async def test_parts_are_answered_in_order_with_their_content_ids(emulator: Emulator) -> None:
    access, _ = emulator.grant()
    body = _multipart(
        [
            _part("abc + 1", "POST", "calendars/primary/events/watch?alt=json", _watch("one")),
            _part("abc + 2", "POST", "channels/stop?", {"id": "nope"}),
            _part("abc + 3", "POST", "calendars/primary/events/watch?alt=json", _watch("two")),
        ]
    )
    status, content_type, raw = await _post(emulator, body, access=access)
    assert status == 200
    assert content_type.startswith("multipart/mixed; boundary=batch_")
    answers = _answers(content_type, raw)
    assert [a.content_id for a in answers] == [
        "<response-abc + 1>",
        "<response-abc + 2>",
        "<response-abc + 3>",
    ]
    assert [a.status for a in answers] == [200, 404, 200]
    assert answers[0].body["id"] == "one"
    assert answers[0].headers["Content-Type"].startswith("application/json")
    assert answers[1].body["error"]["errors"][0]["reason"] == "notFound"
    assert set(emulator.store.channels) == {"one", "two"}
    assert emulator.store.requests["events.watch"] == 2
    assert emulator.store.requests["channels.stop"] == 1
    assert emulator.store.requests["batch"] == 1


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
@pytest.mark.parametrize(
    "content_type", ["multipart/mixed; boundary=xyz123", 'multipart/mixed; boundary="xyz123"']
)
async def test_line_endings_and_boundary_quoting_are_both_accepted(
    emulator: Emulator, eol: str, content_type: str
) -> None:
    access, _ = emulator.grant()
    part = _part("id + 1", "POST", "calendars/primary/events/watch", _watch("w"), eol=eol)
    body = f"--xyz123{eol}{part}{eol}--xyz123--{eol}".encode()
    status, answer_type, raw = await _post(emulator, body, access=access, content_type=content_type)
    assert status == 200
    [answer] = _answers(answer_type, raw)
    assert answer.status == 200
    assert answer.body["id"] == "w"


async def test_outer_authorization_applies_unless_a_part_sets_its_own(
    emulator: Emulator,
) -> None:
    access, _ = emulator.grant()
    body = _multipart(
        [
            _part("a + 1", "POST", "calendars/primary/events/watch", _watch("ok")),
            _part(
                "a + 2",
                "POST",
                "calendars/primary/events/watch",
                _watch("bad"),
                headers={"Authorization": "Bearer not-a-token"},
            ),
        ]
    )
    status, content_type, raw = await _post(emulator, body, access=access)
    assert status == 200
    ok, bad = _answers(content_type, raw)
    assert ok.status == 200
    assert bad.status == 401
    assert bad.headers["WWW-Authenticate"].startswith("Bearer")
    assert bad.body["error"]["errors"][0]["reason"] == "authError"

    # No outer token: every part is unauthenticated.
    _, content_type, raw = await _post(emulator, body)
    assert [a.status for a in _answers(content_type, raw)] == [401, 401]


async def test_a_part_outside_calendar_v3_is_not_found(emulator: Emulator) -> None:
    access, _ = emulator.grant()
    part = _part("x + 1", "GET", "users/me/calendarList", None).replace(
        "/calendar/v3/", "/drive/v3/"
    )
    _, content_type, raw = await _post(emulator, _multipart([part]), access=access)
    [answer] = _answers(content_type, raw)
    assert answer.status == 404


async def test_too_many_parts_is_400(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(batch_max_parts=2)
    access, _ = emu.grant()
    parts = [_part(f"p + {i}", "POST", "channels/stop", {"id": "x"}) for i in range(3)]
    status, _, raw = await _post(emu, _multipart(parts), access=access)
    assert status == 400
    assert json.loads(raw)["error"]["code"] == 400
    assert emu.store.requests["channels.stop"] == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{}"),
        ("multipart/mixed", b"--b\n\n--b--\n"),
        ("multipart/mixed; boundary=b", b""),
        ("multipart/mixed; boundary=b", b"--b--\n"),
        ("multipart/mixed; boundary=b", b"--b\nContent-Type: text/plain\n\nGET / HTTP/1.1\n--b--"),
        ("multipart/mixed; boundary=b", b"--b\nContent-Type: application/http\n\nGARBAGE\n--b--"),
        ("multipart/mixed; boundary=b", b"--b\nContent-Type: application/http\nno colon\n\n--b--"),
    ],
)
async def test_malformed_batches_are_400_in_googles_envelope(
    emulator: Emulator, content_type: str, body: bytes
) -> None:
    access, _ = emulator.grant()
    status, answer_type, raw = await _post(emulator, body, access=access, content_type=content_type)
    assert status == 400
    assert answer_type.startswith("application/json")
    error = json.loads(raw)["error"]
    assert error["code"] == 400
    assert error["errors"][0]["message"]


async def test_each_part_counts_against_the_quota(make_emulator: MakeEmulator) -> None:
    emu = await make_emulator(quotas=QuotaConfig(per_user_per_minute=2))
    access, _ = emu.grant()
    parts = [_part(f"q + {i}", "POST", "channels/stop", {"id": "x"}) for i in range(3)]
    _, content_type, raw = await _post(emu, _multipart(parts), access=access)
    answers = _answers(content_type, raw)
    assert [a.status for a in answers] == [404, 404, 403]
    assert answers[2].body["error"]["errors"][0]["reason"] == "userRateLimitExceeded"


async def test_injected_errors_hit_the_named_method_per_part(emulator: Emulator) -> None:
    access, _ = emulator.grant()
    emulator.faults.add(
        FaultRule(endpoint="events.watch", error_rate=1.0, error_status=503, count=1)
    )
    parts = [
        _part("f + 1", "POST", "calendars/primary/events/watch", _watch("first")),
        _part("f + 2", "POST", "calendars/primary/events/watch", _watch("second")),
    ]
    status, content_type, raw = await _post(emulator, _multipart(parts), access=access)
    assert status == 200
    first, second = _answers(content_type, raw)
    assert first.status == 503
    assert first.body["error"]["errors"][0]["reason"] == "backendError"
    assert second.status == 200
    assert set(emulator.store.channels) == {"second"}
