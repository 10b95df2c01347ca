"""The product's processes as tests run them: real Redis, the emulator as Google, real HTTP.

``AuthWeb`` is the auth_web app served on 127.0.0.1, configured against an emulator whose
registered OAuth client points its redirect URI back at it.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from aiohttp import web
from pydantic import SecretStr

from auth_web.app import create_app
from auth_web.deps import DEPS
from emulator.config import ClientConfig
from gcal.crypto import generate_key
from gcal.services import Services
from gcal.settings import Settings
from tests.harness import Emulator

CLIENT_ID = "gcal-jobs-test.apps.googleusercontent.com"
CLIENT_SECRET = "test-client-secret"
API_KEY = "calling-service-key"


def bound_socket() -> socket.socket:
    """A listening-ready TCP socket on a free 127.0.0.1 port (its port known up front)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def settings_for(emulator: Emulator, redirect_uri: str, prefix: str, **changes: object) -> Settings:
    """Settings pointing every Google URL at ``emulator``."""
    values: dict[str, object] = {
        "client_id": CLIENT_ID,
        "client_secret": SecretStr(CLIENT_SECRET),
        "redirect_uri": redirect_uri,
        "authorization_endpoint": f"{emulator.url}/o/oauth2/v2/auth",
        "token_endpoint": f"{emulator.url}/token",
        "revoke_endpoint": f"{emulator.url}/revoke",
        "calendar_api_base": emulator.calendar_base,
        "batch_endpoint": f"{emulator.url}/batch/calendar/v3",
        "token_keys": (SecretStr(generate_key()),),
        "api_keys": (SecretStr("old-key"), SecretStr(API_KEY)),
        "redis_prefix": prefix,
        "return_to_allowlist": ("https://app.example/linked/",),
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


@dataclass
class AuthWeb:
    url: str
    app: web.Application
    runner: web.AppRunner

    @property
    def services(self) -> Services:
        return self.app[DEPS].services

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def auth_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_KEY}"}


async def start_auth_web(emulator: Emulator, prefix: str, **changes: object) -> AuthWeb:
    """auth_web on a fresh port, registered as an OAuth client with ``emulator``."""
    sock = bound_socket()
    port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    # A test may name another redirect URI (https, a path prefix) to check what derives from it.
    redirect_uri = str(changes.pop("redirect_uri", f"{url}/auth/callback"))
    emulator.store.clients[CLIENT_ID] = ClientConfig(CLIENT_ID, CLIENT_SECRET, (redirect_uri,))
    app = create_app(settings_for(emulator, redirect_uri, prefix, **changes))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return AuthWeb(url=url, app=app, runner=runner)
