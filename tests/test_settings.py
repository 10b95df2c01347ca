"""Settings: Google's endpoints by default, every one overridable, secrets guarded."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from gcal.crypto import generate_key
from gcal.settings import (
    GOOGLE_BATCH_ENDPOINT,
    GOOGLE_CALENDAR_API_BASE,
    GOOGLE_TOKEN_ENDPOINT,
    Settings,
)


def test_defaults_are_googles_real_endpoints() -> None:
    settings = Settings(dev_mode=True)
    assert str(settings.token_endpoint) == GOOGLE_TOKEN_ENDPOINT
    assert str(settings.calendar_api_base) == GOOGLE_CALENDAR_API_BASE
    assert str(settings.batch_endpoint) == GOOGLE_BATCH_ENDPOINT
    assert str(settings.authorization_endpoint) == "https://accounts.google.com/o/oauth2/v2/auth"
    assert str(settings.revoke_endpoint) == "https://oauth2.googleapis.com/revoke"


def test_every_google_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    base = "http://127.0.0.1:8765"
    monkeypatch.setenv("GCAL_DEV_MODE", "true")
    monkeypatch.setenv("GCAL_AUTHORIZATION_ENDPOINT", f"{base}/o/oauth2/v2/auth")
    monkeypatch.setenv("GCAL_TOKEN_ENDPOINT", f"{base}/token")
    monkeypatch.setenv("GCAL_REVOKE_ENDPOINT", f"{base}/revoke")
    monkeypatch.setenv("GCAL_CALENDAR_API_BASE", f"{base}/calendar/v3/")
    monkeypatch.setenv("GCAL_BATCH_ENDPOINT", f"{base}/batch/calendar/v3")
    settings = Settings()
    urls = [
        settings.authorization_endpoint,
        settings.token_endpoint,
        settings.revoke_endpoint,
        settings.calendar_api_base,
        settings.batch_endpoint,
    ]
    assert all(str(url).startswith(base) for url in urls)


def test_calendar_base_must_end_with_the_service_path() -> None:
    with pytest.raises(ValidationError, match="calendar/v3/"):
        Settings(dev_mode=True, calendar_api_base="http://127.0.0.1:8765/")  # type: ignore[arg-type]


def test_placeholder_secrets_are_refused_outside_dev_mode() -> None:
    with pytest.raises(ValidationError, match="client_id is not set"):
        Settings()
    with pytest.raises(ValidationError, match="client_secret is not set"):
        Settings(client_id="real-id", client_secret=SecretStr("changeme"))
    with pytest.raises(ValidationError, match="token_keys is not set"):
        Settings(client_id="real-id", client_secret=SecretStr("s3cr3t-value"))
    with pytest.raises(ValidationError, match="api_keys is not set"):
        Settings(
            client_id="real-id",
            client_secret=SecretStr("s3cr3t-value"),
            token_keys=(SecretStr(generate_key()),),
        )
    settings = Settings(
        client_id="real-id",
        client_secret=SecretStr("s3cr3t-value"),
        token_keys=(SecretStr(generate_key()),),
        api_keys=(SecretStr("caller-key-1"),),
    )
    assert "s3cr3t-value" not in repr(settings)
    assert "caller-key-1" not in repr(settings)


def test_unknown_settings_are_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(dev_mode=True, token_endpiont="http://x")  # type: ignore[call-arg]
