"""The unmodified google-auth library against the emulator's token endpoint and ID tokens.

google-auth is synchronous, so the emulator runs in its own thread (``threaded_emulator``).
"""

from __future__ import annotations

import base64
import datetime as dt

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions, jwt
from google.auth.transport.requests import Request
from google.oauth2.credentials import Credentials

from emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from tests.harness import CALENDAR_EVENTS, Emulator

EMAIL = "https://www.googleapis.com/auth/userinfo.email"


def credentials(emu: Emulator, refresh_token: str, scopes: list[str] | None = None) -> Credentials:
    return Credentials(  # type: ignore[no-untyped-call]
        token=None,
        scopes=scopes,
        refresh_token=refresh_token,
        token_uri=f"{emu.url}/token",
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
    )


def test_google_auth_refreshes_then_fails_once_revoked(threaded_emulator: Emulator) -> None:
    emu = threaded_emulator
    _, refresh_token = emu.grant("alice@example.com", scopes=(CALENDAR_EVENTS,))
    # With scopes set, google-auth sends them on refresh and reads back the granted ones.
    creds = credentials(emu, refresh_token, scopes=[CALENDAR_EVENTS])

    with requests.Session() as session:
        creds.refresh(Request(session))  # type: ignore[no-untyped-call]
        assert creds.token is not None
        assert emu.store.valid_access_token(creds.token) is not None
        assert creds.expiry is not None
        # expires_in 3599 keeps the token valid past google-auth's 225 s early-expiry margin.
        naive_utc_now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        assert creds.expiry > naive_utc_now + dt.timedelta(minutes=50)
        assert creds.valid
        assert creds.refresh_token == refresh_token  # no rotation: the old one is kept
        assert creds.granted_scopes == [CALENDAR_EVENTS]
        assert emu.store.requests["oauth.token.refresh_token"] == 1

        revoked = session.post(f"{emu.url}/revoke", params={"token": refresh_token}, timeout=10)
        assert revoked.status_code == 200

        with pytest.raises(exceptions.RefreshError, match="invalid_grant") as raised:
            creds.refresh(Request(session))  # type: ignore[no-untyped-call]
    assert raised.value.retryable is False


def test_google_auth_verifies_the_id_token_with_the_published_key(
    threaded_emulator: Emulator,
) -> None:
    emu = threaded_emulator
    _, refresh_token = emu.grant("alice@example.com", scopes=("openid", EMAIL))
    creds = credentials(emu, refresh_token)
    with requests.Session() as session:
        creds.refresh(Request(session))  # type: ignore[no-untyped-call]
        jwks = session.get(f"{emu.url}/oauth2/v3/certs", timeout=10).json()

    certs = {key["kid"]: _pem(key["n"], key["e"]) for key in jwks["keys"]}
    claims = jwt.decode(creds.id_token, certs=certs, audience=DEMO_CLIENT_ID)  # type: ignore[no-untyped-call]
    assert claims["email"] == "alice@example.com"
    assert claims["sub"] == emu.store.accounts["alice@example.com"].sub
    assert claims["iss"] == emu.url


def _pem(n: str, e: str) -> bytes:
    def number(value: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    public = rsa.RSAPublicNumbers(number(e), number(n)).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
