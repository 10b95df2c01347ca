"""Calendar batch requests: ``POST /batch/calendar/v3``, multipart/mixed in and out.

Each part of the request is one ``application/http`` message (``METHOD /calendar/v3/... HTTP/1.1``,
headers, body; LF or CRLF line endings, as googleapiclient sends LF). Every part runs through
:func:`emulator.api.dispatch` on its own, so auth, scopes and quotas count per inner call, as
Google counts them (google-api-facts §3.4). The outer ``Authorization`` header applies to
every part that sets none. The answer holds one ``application/http`` part per request part,
in request order, each with ``Content-ID: <response-ORIGINAL>`` so googleapiclient can match
it (it splits the id on ``" + "``).
"""

from __future__ import annotations

import http
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict

from emulator.api import ApiRequest, ApiResponse, dispatch, error_response, resolve_name
from emulator.errors import ApiError, bad_request, not_found
from emulator.faults import FaultPlan
from emulator.keys import FAULTS, QUOTAS, ROUTES, STORE

CALENDAR_PREFIX = "/calendar/v3"
# Outer headers that every part inherits unless it sets its own.
_INHERITED = ("Authorization",)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_LINE_BREAK = re.compile(rb"\r?\n")


@dataclass(frozen=True, slots=True)
class Part:
    """One inner request of a batch, with the Content-ID it came with (if any).

    ``request.path`` is below ``/calendar/v3``; ``request`` is None for a part addressed
    elsewhere (it answers 404).
    """

    content_id: str | None
    request: ApiRequest | None


async def handle(request: web.Request) -> web.StreamResponse:
    app = request.app
    store = app[STORE]
    store.requests["batch"] += 1
    try:
        boundary = _boundary(request.headers.get("Content-Type", ""))
        chunks = _split(await request.read(), boundary)
        if len(chunks) > store.config.batch_max_parts:
            raise bad_request(
                f"Too many requests in a batch: at most {store.config.batch_max_parts} allowed."
            )
        parts = [_parse_part(chunk, request.headers) for chunk in chunks]
    except ApiError as err:
        result = error_response(err)
        return web.Response(
            status=result.status,
            body=result.body,
            headers=result.headers,
            content_type="application/json",
            charset="UTF-8",
        )

    # Google runs inner calls in any order; request order is one of them, and repeatable.
    answers = [_render(part.content_id, await _answer(app, part.request)) for part in parts]
    out_boundary = "batch_" + secrets.token_hex(12)
    delimiter = f"--{out_boundary}\r\n".encode()
    body = b"".join(delimiter + answer for answer in answers) + f"--{out_boundary}--\r\n".encode()
    return web.Response(
        body=body, headers={"Content-Type": f"multipart/mixed; boundary={out_boundary}"}
    )


# Parsing -----------------------------------------------------------------------------------


def _boundary(content_type: str) -> bytes:
    header = Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if header.get_content_type() != "multipart/mixed" or not isinstance(boundary, str):
        raise bad_request("Batch requests must be multipart/mixed with a boundary.")
    return boundary.encode()


def _split(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts of a multipart body (RFC 2046 §5.1.1), without their delimiters."""
    segments = body.split(b"--" + boundary)
    if len(segments) < 2:
        raise bad_request("Empty batch request.")
    parts: list[bytes] = []
    for segment in segments[1:]:
        if segment.startswith(b"--"):
            break  # the close delimiter; what follows is epilogue
        # After the delimiter: optional padding, then a line break. The line break before
        # the next delimiter belongs to that delimiter.
        head = _LINE_BREAK.match(segment.lstrip(b" \t"))
        if head is None:
            raise bad_request("Failed to parse batch request: bad part delimiter.")
        part = segment.lstrip(b" \t")[head.end() :]
        parts.append(part.removesuffix(b"\n").removesuffix(b"\r"))
    if not parts:
        raise bad_request("Empty batch request.")
    return parts


def _split_head(message: bytes) -> tuple[list[str], bytes]:
    """Header lines and body of a MIME or HTTP message (LF or CRLF line endings)."""
    found = _BLANK_LINE.search(message)
    head, body = (message[: found.start()], message[found.end() :]) if found else (message, b"")
    try:
        lines = head.decode("utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise bad_request("Failed to parse batch request: headers are not UTF-8.") from err
    return lines, body


def _headers(lines: list[str]) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise bad_request(f"Failed to parse batch request: bad header line {line!r}.")
        headers.add(name.strip(), value.strip())
    return headers


def _parse_part(chunk: bytes, outer: Mapping[str, str]) -> Part:
    mime_lines, message = _split_head(chunk)
    mime = _headers(mime_lines)
    if mime.get("Content-Type", "").split(";")[0].strip().lower() != "application/http":
        raise bad_request("Each batch part must be Content-Type: application/http.")
    lines, body = _split_head(message)
    if not lines:
        raise bad_request("Failed to parse batch request: a part has no request line.")
    words = lines[0].split()
    if len(words) not in (2, 3) or (len(words) == 3 and not words[2].startswith("HTTP/")):
        raise bad_request(f"Failed to parse batch request: bad request line {lines[0]!r}.")
    method, target = words[0], words[1]
    headers = _headers(lines[1:])
    for name in _INHERITED:
        if name not in headers and name in outer:
            headers[name] = outer[name]
    length = headers.get("Content-Length")
    if length is not None and length.isdigit():
        body = body[: int(length)]
    url = urlsplit(target)
    content_id = mime.get("Content-ID")
    if not url.path.startswith(CALENDAR_PREFIX + "/"):
        return Part(content_id, None)
    path = url.path[len(CALENDAR_PREFIX) :]
    return Part(content_id, ApiRequest.build(method, path, url.query, headers, body))


# Answers -----------------------------------------------------------------------------------


async def _answer(app: web.Application, request: ApiRequest | None) -> ApiResponse:
    if request is None:
        return error_response(not_found())
    # Injected errors hit a part only through rules naming its method: "*" rules already
    # apply to the outer batch request.
    name = resolve_name(app[ROUTES], request)
    plan = app[FAULTS].plan(name, exact=True) if name else FaultPlan()
    if plan.error_status:
        from emulator.app import fault_error  # noqa: PLC0415 - app imports this module

        status, body, headers = fault_error(name or "batch", plan)
        return ApiResponse(status=status, body=body, headers=headers)
    return await dispatch(app[STORE], app[QUOTAS], app[ROUTES], request)


def _render(content_id: str | None, answer: ApiResponse) -> bytes:
    """One ``application/http`` response part (with its trailing line break)."""
    mime = ["Content-Type: application/http"]
    if content_id is not None:
        original = content_id.strip().removeprefix("<").removesuffix(">")
        mime.append(f"Content-ID: <response-{original}>")
    try:
        phrase = http.HTTPStatus(answer.status).phrase
    except ValueError:
        phrase = "Unknown"
    lines = [f"HTTP/1.1 {answer.status} {phrase}"]
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
    if answer.body or answer.status != 204:
        lines.append(f"Content-Type: {answer.content_type}")
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    lines.append(f"Content-Length: {len(answer.body)}")
    head = "\r\n".join(mime) + "\r\n\r\n" + "\r\n".join(lines) + "\r\n\r\n"
    return head.encode() + answer.body + b"\r\n"
