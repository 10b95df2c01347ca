"""The protocol side of Google's OAuth 2.0 web-server flow: consent URLs, PKCE, the code
exchange, refresh and revocation, over a pooled aiohttp session handed in by the caller.

    oauth = OAuthClient(settings, session)
    verifier, challenge = new_pkce()
    url = oauth.consent_url(state=new_state(), code_challenge=challenge, scopes=[EVENTS])
    grant = await oauth.exchange_code(code, verifier)
    fresh = await oauth.refresh(grant.refresh_token.get_secret_value())

Every consent URL asks for ``openid`` besides the scopes given: it reads no data (Google
shows no extra line for it on the consent screen) and brings an ID token whose ``sub`` is the
Google account's stable id, which tells a re-link to another account from a re-link to the
same one (:mod:`gcal.accounts`). Email addresses change hands and can change; ``sub`` does not.

Token-endpoint failures become :mod:`gcal.errors` in one place (:func:`token_error`).
Connection errors, timeouts and 5xx are retried a bounded number of times inside the call
(:func:`gcal.retry_budget.in_call_attempts`: within the running job's retry budget); nothing
else is. No token, code or secret is ever logged or put in an error message.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from gcal.errors import (
    AuthRevoked,
    GcalError,
    InternalError,
    InvalidRequest,
    ScopeMissing,
    UpstreamUnavailable,
)
from gcal.observer import NO_OBSERVER, GoogleObserver
from gcal.retry_budget import in_call_attempts, spend_on_retry
from gcal.scopes import OPENID
from gcal.settings import Settings

log = logging.getLogger(__name__)

_TRANSIENT_ERRORS = frozenset({"internal_failure", "server_error", "temporarily_unavailable"})
# The observer's method name of each token-endpoint grant.
_TOKEN_METHODS = {"authorization_code": "oauth.exchange_code", "refresh_token": "oauth.refresh"}


def new_state() -> str:
    """A fresh ``state`` value: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def new_pkce() -> tuple[str, str]:
    """A PKCE (RFC 7636) verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(64)  # 86 characters, within 43..128
    return verifier, pkce_challenge(verifier)


def pkce_challenge(verifier: str) -> str:
    """The S256 challenge of a PKCE verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class TokenGrant(BaseModel):
    """What the token endpoint granted."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    expires_at: dt.datetime
    refresh_token: SecretStr | None = None
    scopes: frozenset[str]
    email: str | None = None
    sub: str | None = Field(default=None, description="The Google account's stable id.")


def token_error(status: int, body: bytes, *, exchanging_code: bool = False) -> GcalError:
    """The domain error for a failed token-endpoint response."""
    try:
        payload = json.loads(body)
        error = str(payload.get("error", ""))
    except (ValueError, AttributeError):
        error = ""
    if status >= 500 or status in (408, 429) or error in _TRANSIENT_ERRORS:
        return UpstreamUnavailable(f"Google's token endpoint answered {status}")
    if error == "invalid_grant":
        if exchanging_code:
            return InvalidRequest("the authorization code is invalid, expired or already used")
        return AuthRevoked("Google refused the refresh token: access expired or was revoked")
    if error == "invalid_scope":
        return ScopeMissing("a requested scope was not granted")
    if error in ("invalid_client", "unauthorized_client"):
        return InternalError(
            f"Google rejected this service's OAuth client ({error}): check GCAL_CLIENT_ID/SECRET"
        )
    return InternalError(f"Google's token endpoint answered {status} {error}".rstrip())


def _id_claims(id_token: str | None) -> dict[str, Any]:
    """The claims of an ID token, or {} if there is none or it cannot be read."""
    # The ID token came straight from the token endpoint over TLS, so its signature need not
    # be checked to read it (OpenID Connect Core 1.0, section 3.1.3.7).
    if not id_token:
        return {}
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return str(value) if value else None


class OAuthClient:
    """Google's OAuth endpoints, as the service's registered client."""

    def __init__(
        self,
        settings: Settings,
        session: aiohttp.ClientSession,
        observer: GoogleObserver = NO_OBSERVER,
    ) -> None:
        self._settings = settings
        self._session = session
        self._observer = observer
        self._timeout = aiohttp.ClientTimeout(total=settings.http_timeout)

    def consent_url(
        self,
        *,
        state: str,
        code_challenge: str,
        scopes: Iterable[str],
        login_hint: str | None = None,
    ) -> str:
        """The URL that asks the user to consent: ``scopes`` plus ``openid``, offline
        access, forced consent (so a refresh token always arrives), incremental scopes,
        PKCE S256."""
        s = self._settings
        params = {
            "client_id": s.client_id,
            "redirect_uri": str(s.redirect_uri),
            "response_type": "code",
            "scope": " ".join(dict.fromkeys((*scopes, OPENID))),
            "access_type": "offline",
            "prompt": "consent",
            "include_granted_scopes": "true",
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        if login_hint:
            params["login_hint"] = login_hint
        return f"{s.authorization_endpoint}?{urlencode(params)}"

    async def exchange_code(self, code: str, verifier: str) -> TokenGrant:
        """Trade an authorization code (and its PKCE verifier) for tokens."""
        payload = await self._post_token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": str(self._settings.redirect_uri),
            },
            exchanging_code=True,
        )
        return self._grant(payload)

    async def refresh(self, refresh_token: str) -> TokenGrant:
        """A new access token; :class:`AuthRevoked` if the refresh token no longer works."""
        try:
            payload = await self._post_token(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}
            )
        except AuthRevoked:
            self._observer.refresh("revoked")
            self._observer.revocation("google")
            raise
        except GcalError:
            self._observer.refresh("failed")
            raise
        self._observer.refresh("ok")
        return self._grant(payload)

    async def revoke(self, token: str) -> None:
        """Revoke the grant behind ``token``; a token Google no longer knows counts as done."""
        async for attempt in in_call_attempts():
            spend_on_retry(attempt)
            with attempt:
                status, body = await self._post(
                    str(self._settings.revoke_endpoint), {"token": token}, "oauth.revoke"
                )
                if status == 200:
                    self._observer.revocation("service")
                    return
                error = token_error(status, body)
                if status == 400 and not error.retryable:
                    log.info("revoke: Google no longer knows the token (status %s)", status)
                    return
                raise error

    async def _post_token(
        self, form: dict[str, str], *, exchanging_code: bool = False
    ) -> dict[str, Any]:
        form = {
            **form,
            "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret.get_secret_value(),
        }
        async for attempt in in_call_attempts():
            spend_on_retry(attempt)
            with attempt:
                status, body = await self._post(
                    str(self._settings.token_endpoint), form, _TOKEN_METHODS[form["grant_type"]]
                )
                if status != 200:
                    raise token_error(status, body, exchanging_code=exchanging_code)
                try:
                    payload = json.loads(body)
                except ValueError as err:
                    raise UpstreamUnavailable(
                        "Google's token endpoint sent malformed JSON"
                    ) from err
                if not isinstance(payload, dict) or not payload.get("access_token"):
                    raise UpstreamUnavailable("Google's token endpoint sent no access token")
                return payload
        raise AssertionError("unreachable")  # pragma: no cover - retry_context re-raises

    async def _post(self, url: str, form: dict[str, str], method: str) -> tuple[int, bytes]:
        """One HTTP exchange (``method`` names it for the observer)."""
        started = time.perf_counter()
        try:
            async with self._session.post(url, data=form, timeout=self._timeout) as resp:
                body = await resp.read()
                self._observer.request(method, str(resp.status), time.perf_counter() - started)
                return resp.status, body
        except (TimeoutError, aiohttp.ClientError) as err:
            self._observer.request(method, "error", time.perf_counter() - started)
            # The exception text may hold the URL only; never the form.
            raise UpstreamUnavailable(
                f"Google's OAuth endpoint is unreachable ({type(err).__name__})"
            ) from err

    def _grant(self, payload: dict[str, Any]) -> TokenGrant:
        try:
            expires_in = int(payload.get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600
        refresh = payload.get("refresh_token")
        claims = _id_claims(payload.get("id_token"))
        return TokenGrant(
            access_token=SecretStr(str(payload["access_token"])),
            expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expires_in),
            refresh_token=SecretStr(str(refresh)) if refresh else None,
            scopes=frozenset(str(payload.get("scope", "")).split()),
            email=_claim(claims, "email"),
            sub=_claim(claims, "sub"),
        )
