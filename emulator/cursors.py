"""Cursors of event listings: page tokens and sync tokens.

Both are opaque to clients: base64url of a small JSON object bound to its calendar, so a token
of another calendar (or garbage) answers 400. A sync token records the calendar's change
sequence; it answers ``410 fullSyncRequired`` once the calendar expired tokens after it was
issued (google-api-facts §4.1). A page token also records the sequence the listing started at,
so the ``nextSyncToken`` of its last page misses nothing that changed while the client paged,
plus a digest of the query it belongs to (``binding``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from emulator.errors import ApiError, bad_request
from emulator.state import Calendar

Key = Any  # str (default order), or (float|str, str) for orderBy=startTime/updated


def encode_token(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any] | None:
    """The payload of one of our tokens, or None if ``token`` is not one."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    return payload if isinstance(payload, dict) else None


def invalid_sync_token() -> ApiError:
    # Reason and message as real clients see them (google-api-facts §4.1, §4.4).
    return ApiError(400, "invalid", "Invalid sync token value.")


def full_sync_required() -> ApiError:
    # The exact 410 envelope of google-api-facts §4.1.
    return ApiError(
        410,
        "fullSyncRequired",
        "Sync token is no longer valid, a full sync is required.",
        domain="calendar",
        location="syncToken",
        location_type="parameter",
    )


def invalid_page_token() -> ApiError:
    return bad_request("Invalid page token value.", reason="invalid", location="pageToken")


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a listing resumes: the change sequence it started at, and the last key sent."""

    seq: int
    floor: int
    after: Key


def sync_seq(token: str, calendar: Calendar) -> int:
    """The sequence a sync token was issued at: 400 if it is not one of ``calendar``'s tokens,
    410 once expired."""
    payload = decode_token(token)
    if payload is None or payload.get("k") != "sync" or payload.get("c") != calendar.id:
        raise invalid_sync_token()
    seq, floor = payload.get("s"), payload.get("f")
    if type(seq) is not int or type(floor) is not int:
        raise invalid_sync_token()
    # Expired if an expiry happened after the token was issued and covers its sequence, or
    # if the token is from a calendar's earlier life (a reset store).
    expired = seq < calendar.sync_floor and floor < calendar.sync_floor
    if expired or seq > calendar.seq:
        raise full_sync_required()
    return seq


def sync_token(calendar: Calendar, seq: int, floor: int) -> str:
    return encode_token({"k": "sync", "c": calendar.id, "s": seq, "f": floor})


def parse_cursor(token: str, calendar: Calendar, binding: str, order_by: str | None) -> Cursor:
    """Where a page token resumes; 400 unless it continues this very listing (``binding``)."""
    payload = decode_token(token)
    if payload is None or payload.get("k") != "page" or payload.get("c") != calendar.id:
        raise invalid_page_token()
    seq, floor, after = payload.get("s"), payload.get("f"), payload.get("a")
    if payload.get("b") != binding or type(seq) is not int or type(floor) is not int:
        raise invalid_page_token()
    if order_by is None:
        if not isinstance(after, str):
            raise invalid_page_token()
        return Cursor(seq, floor, after)
    if not (isinstance(after, list) and len(after) == 2 and isinstance(after[1], str)):
        raise invalid_page_token()
    first_type = str if order_by == "updated" else (int, float)
    if not isinstance(after[0], first_type):
        raise invalid_page_token()
    return Cursor(seq, floor, (after[0], after[1]))


def page_token(calendar: Calendar, binding: str, seq: int, floor: int, after: Key) -> str:
    last = list(after) if isinstance(after, tuple) else after
    return encode_token(
        {"k": "page", "c": calendar.id, "s": seq, "f": floor, "a": last, "b": binding}
    )
