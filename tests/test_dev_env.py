"""``dev.env``, the local container stack's settings (compose.yaml, ``--profile dev``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values

from gcal.crypto import generate_key
from gcal.envfile import env_name
from gcal.settings import Settings

DEV_ENV = Path(__file__).resolve().parent.parent / "dev.env"


def dev_env() -> dict[str, str]:
    values = dotenv_values(DEV_ENV)
    assert all(value is not None for value in values.values())
    return {key: value or "" for key, value in values.items()}


def test_every_variable_is_a_setting() -> None:
    # Settings ignores GCAL_* names it does not know, so a misspelt one would pass silently.
    known = {env_name(field) for field in Settings.model_fields}
    assert set(dev_env()) - known == set()


def test_dev_env_is_dev_mode_against_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in dev_env().items():
        monkeypatch.setenv(key, value)
    # The one value it leaves to the developer, as the README says.
    monkeypatch.setenv("GCAL_TOKEN_KEYS", f'["{generate_key()}"]')
    settings = Settings()
    assert settings.dev_mode
    google = [
        settings.authorization_endpoint,
        settings.token_endpoint,
        settings.revoke_endpoint,
        settings.calendar_api_base,
        settings.batch_endpoint,
    ]
    assert [url.port for url in google] == [8765] * 5
    assert all("google" not in str(url.host) for url in google)
    # The browser reaches both auth_web and the emulator through their published ports.
    assert settings.authorization_endpoint.host == settings.redirect_uri.host == "127.0.0.1"
