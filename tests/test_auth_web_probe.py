"""``python -m auth_web --check``: the container's health probe asks the running auth_web."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from auth_web.__main__ import main
from auth_web.health import probe
from tests.conftest import MakeAuthWeb
from tests.services import bound_socket


async def test_probe_answers_for_a_running_auth_web(make_auth_web: MakeAuthWeb) -> None:
    auth_web = await make_auth_web()
    port = urlsplit(auth_web.url).port
    # Listening on every address (as in a container), the probe goes over loopback.
    for host in ("127.0.0.1", "0.0.0.0"):  # noqa: S104 - the setting's value, nothing binds
        settings = auth_web.settings.model_copy(
            update={"auth_web_host": host, "auth_web_port": port}
        )
        assert await probe(settings)


async def test_probe_fails_when_nothing_answers(make_auth_web: MakeAuthWeb) -> None:
    auth_web = await make_auth_web()
    with bound_socket() as closed:  # bound, never listening: connections are refused
        port = closed.getsockname()[1]
        assert not await probe(auth_web.settings.model_copy(update={"auth_web_port": port}))


def test_check_command_exits_1_when_auth_web_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    with bound_socket() as closed:
        monkeypatch.setenv("GCAL_DEV_MODE", "true")
        monkeypatch.setenv("GCAL_AUTH_WEB_PORT", str(closed.getsockname()[1]))
        assert main(["--check"]) == 1
