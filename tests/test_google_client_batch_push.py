"""Conformance: googleapiclient's own batch and push calls against the emulator.

googleapiclient is synchronous (httplib2), so the emulator runs in its own thread and the
webhook receiver is a stdlib HTTP server in another.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import google.oauth2.credentials
import googleapiclient.discovery
import pytest
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from tests.harness import CALENDAR, Emulator

Notification = dict[str, str]


def _service(emu: Emulator, access: str) -> Any:
    return googleapiclient.discovery.build(
        "calendar",
        "v3",
        credentials=google.oauth2.credentials.Credentials(token=access),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": emu.calendar_base},
        static_discovery=True,
        cache_discovery=False,
    )


@pytest.fixture
def webhook() -> Iterator[tuple[str, queue.Queue[Notification]]]:
    """A receiver on 127.0.0.1 that queues each notification's headers."""
    received: queue.Queue[Notification] = queue.Queue()

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            self.rfile.read(length)
            received.put(dict(self.headers.items()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_batch_of_inserts_and_a_missing_get(threaded_emulator: Emulator) -> None:
    emu = threaded_emulator
    access, _ = emu.grant(scopes=(CALENDAR,))
    with _service(emu, access) as service:
        _batch_inserts_and_a_missing_get(emu, service)


def _batch_inserts_and_a_missing_get(emu: Emulator, service: Any) -> None:
    results: dict[str, Any] = {}
    errors: dict[str, HttpError] = {}

    def callback(request_id: str, response: Any, exception: HttpError | None) -> None:
        if exception is not None:
            errors[request_id] = exception
        else:
            results[request_id] = response

    batch = BatchHttpRequest(callback=callback, batch_uri=f"{emu.url}/batch/calendar/v3")
    for i in range(3):
        body = {
            "summary": f"Batched {i}",
            "start": {"dateTime": f"2026-03-0{i + 2}T10:00:00Z"},
            "end": {"dateTime": f"2026-03-0{i + 2}T11:00:00Z"},
        }
        batch.add(service.events().insert(calendarId="primary", body=body), request_id=f"ins{i}")
    batch.add(service.events().get(calendarId="primary", eventId="missing00"), request_id="get")
    batch.execute()

    assert sorted(results) == ["ins0", "ins1", "ins2"]
    assert [results[f"ins{i}"]["summary"] for i in range(3)] == [
        "Batched 0",
        "Batched 1",
        "Batched 2",
    ]
    assert list(errors) == ["get"]
    assert errors["get"].status_code == 404
    assert emu.store.requests["events.insert"] == 3
    assert emu.store.requests["events.get"] == 1
    listed = service.events().list(calendarId="primary").execute()
    assert len(listed["items"]) == 3


def test_watch_then_stop(
    threaded_emulator: Emulator, webhook: tuple[str, queue.Queue[Notification]]
) -> None:
    address, received = webhook
    emu = threaded_emulator
    access, _ = emu.grant(scopes=(CALENDAR,))
    with _service(emu, access) as service:
        _watch_then_stop(emu, service, received, address)


def _watch_then_stop(
    emu: Emulator, service: Any, received: queue.Queue[Notification], address: str
) -> None:
    channel = (
        service.events()
        .watch(
            calendarId="primary",
            body={"id": "gapi-chan", "type": "web_hook", "address": address, "token": "tok"},
        )
        .execute()
    )
    assert channel["kind"] == "api#channel"
    assert channel["id"] == "gapi-chan"
    sync = received.get(timeout=5)
    assert sync["X-Goog-Resource-State"] == "sync"
    assert sync["X-Goog-Channel-Token"] == "tok"

    body = {
        "summary": "Pushed",
        "start": {"dateTime": "2026-03-02T10:00:00Z"},
        "end": {"dateTime": "2026-03-02T11:00:00Z"},
    }
    service.events().insert(calendarId="primary", body=body).execute()
    changed = received.get(timeout=5)
    assert changed["X-Goog-Resource-State"] == "exists"
    assert changed["X-Goog-Message-Number"] == "2"

    stopped = (
        service.channels()
        .stop(body={"id": channel["id"], "resourceId": channel["resourceId"]})
        .execute()
    )
    assert stopped == ""
    assert "gapi-chan" not in emu.store.channels
    with pytest.raises(HttpError) as missing:
        service.channels().stop(body={"id": "gapi-chan", "resourceId": "x"}).execute()
    assert missing.value.status_code == 404
