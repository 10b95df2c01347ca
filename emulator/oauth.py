"""Google's OAuth 2.0 web-server flow, wired: the routes, the shared state, the token side.

Routes (names are what fault injection targets), all registered by :func:`setup`:

* ``GET /o/oauth2/v2/auth`` (``oauth.authorize``) and ``POST /o/oauth2/v2/auth/consent``
  (``oauth.consent``): the authorization endpoint, in :mod:`emulator.authorization`.
* ``POST /token`` (``oauth.token``): ``authorization_code`` and ``refresh_token`` grants.
* ``POST /revoke`` (``oauth.revoke``): revokes the whole grant a token belongs to.
* ``GET /oauth2/v3/certs`` (``oauth.certs``) and ``GET /v1/userinfo`` (``oauth.userinfo``).

This module owns the token side (the token, revoke, certs and userinfo endpoints) and
:class:`OAuthState`, what the OAuth endpoints keep beside the :class:`Store` (reached through
:data:`emulator.keys.OAUTH`). ID tokens are signed by :mod:`emulator.idtoken`; scope names
live in :mod:`emulator.scopes`.

The rules are google-api-facts.md §1. Each handler counts its calls in ``store.requests`` by
route name (and ``oauth.token.<grant_type>``); calls answered by fault injection never reach
a handler, so are not counted. Tokens, codes and secrets never reach a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import web

from emulator.authorization import (
    AUTHORIZE_PATH,
    CONSENT_PATH,
    PKCE_VALUE,
    PendingRequest,
    authorize,
    consent,
)
from emulator.config import ClientConfig
from emulator.errors import OAuthError
from emulator.idtoken import IdTokenSigner, b64url, compact_json, id_claims
from emulator.keys import OAUTH, STORE
from emulator.scopes import EMAIL_SCOPE, IDENTITY_SCOPES, PROFILE_SCOPE, parse_scopes, scope_string
from emulator.state import Account, AuthCode, RefreshToken, Store, new_token

log = logging.getLogger(__name__)

# Google's token responses are never cached (typebot#580 captured headers).
_NO_STORE = {
    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
    "Pragma": "no-cache",
    "Expires": "Mon, 01 Jan 1990 00:00:00 GMT",
}


@dataclass(slots=True)
class OAuthState:
    """What the OAuth endpoints keep beside the :class:`Store`: consent pages and the key."""

    pending: dict[str, PendingRequest] = field(default_factory=dict)
    _signer: IdTokenSigner | None = None

    @property
    def signer(self) -> IdTokenSigner:
        # Made on first use: generating an RSA key costs tens of milliseconds per app.
        if self._signer is None:
            self._signer = IdTokenSigner()
        return self._signer


def setup(app: web.Application) -> None:
    """Register the OAuth routes on ``app``."""
    app[OAUTH] = OAuthState()
    app.router.add_get(AUTHORIZE_PATH, authorize, name="oauth.authorize")
    app.router.add_post(CONSENT_PATH, consent, name="oauth.consent")
    app.router.add_post("/token", token, name="oauth.token")
    app.router.add_post("/revoke", revoke, name="oauth.revoke")
    app.router.add_get("/oauth2/v3/certs", certs, name="oauth.certs")
    app.router.add_get("/v1/userinfo", userinfo, name="oauth.userinfo")


# Token -------------------------------------------------------------------------------------


async def token(request: web.Request) -> web.Response:
    store = request.app[STORE]
    store.requests["oauth.token"] += 1
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    grant_type = form.get("grant_type", "")
    if grant_type in ("authorization_code", "refresh_token"):
        store.requests[f"oauth.token.{grant_type}"] += 1
    basic = request.headers.get("Authorization", "").lower().startswith("basic ")
    try:
        client = _authenticate_client(store, request.headers.get("Authorization", ""), form)
        if grant_type == "authorization_code":
            body = _exchange_code(store, request.app[OAUTH], client, form)
        elif grant_type == "refresh_token":
            body = _refresh(store, request.app[OAUTH], client, form)
        elif not grant_type:
            raise OAuthError(400, "invalid_request", "Required parameter is missing: grant_type")
        else:
            raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    except OAuthError as err:
        log.info("token request refused: %s (%s)", err.error, grant_type or "no grant_type")
        headers = dict(_NO_STORE)
        if err.error == "invalid_client" and basic:
            headers["WWW-Authenticate"] = 'Basic realm="oauth2"'  # RFC 6749 §5.2
        return _json(err.status, err.body(), headers)
    return _json(200, compact_json(body), _NO_STORE)


def _authenticate_client(store: Store, authorization: str, form: dict[str, str]) -> ClientConfig:
    """The client, by HTTP Basic (client_secret_basic) or body fields (client_secret_post)."""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as err:
            raise OAuthError(401, "invalid_client", "Unauthorized") from err
        raw_id, colon, raw_secret = decoded.partition(":")
        if not colon:
            raise OAuthError(401, "invalid_client", "Unauthorized")
        # RFC 6749 §2.3.1: both halves are form-urlencoded before joining.
        client_id, secret = unquote_plus(raw_id), unquote_plus(raw_secret)
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    if not client_id:
        raise OAuthError(400, "invalid_request", "Could not determine client ID from request.")
    client = store.clients.get(client_id)
    if client is None:
        raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
    if not secret:
        raise OAuthError(400, "invalid_request", "client_secret is missing.")
    if not hmac.compare_digest(secret.encode(), client.client_secret.encode()):
        raise OAuthError(401, "invalid_client", "Unauthorized")
    return client


def _exchange_code(
    store: Store, oauth: OAuthState, client: ClientConfig, form: dict[str, str]
) -> dict[str, Any]:
    value = _required(form, "code")
    code = store.codes.get(value)
    if code is None:
        raise OAuthError(400, "invalid_grant", "Malformed auth code.")
    if code.used:
        if store.config.code_replay_revokes_tokens:
            _revoke_issued(store, code)
        log.warning("authorization code replayed: client=%s", client.client_id)
        raise OAuthError(400, "invalid_grant", "Bad Request")
    if code.client_id != client.client_id or code.expires_at <= store.clock.now():
        raise OAuthError(400, "invalid_grant", "Bad Request")
    # facts §1.5: a redirect_uri that differs from the authorization request's is invalid_grant.
    if _required(form, "redirect_uri") != code.redirect_uri:
        raise OAuthError(400, "invalid_grant", "Bad Request")
    if code.code_challenge is not None:
        verifier = form.get("code_verifier")
        if not verifier:
            raise OAuthError(400, "invalid_grant", "Missing code verifier.")
        if not _verifier_matches(code, verifier):
            raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
    account = store.accounts.get(code.email)
    if account is None:  # the store was reset since the code was issued
        raise OAuthError(400, "invalid_grant", "Bad Request")
    code.used = True
    refresh: RefreshToken | None = None
    if code.issue_refresh_token:
        refresh = RefreshToken(new_token("1//0g"), client.client_id, account.email, code.scopes)
        store.refresh_tokens[refresh.token] = refresh
    body = _issue(
        store,
        oauth,
        account,
        code.scopes,
        client_id=client.client_id,
        refresh=refresh,
        nonce=code.nonce,
    )
    code.issued = (body["access_token"],) + ((refresh.token,) if refresh else ())
    if refresh is not None:
        body["refresh_token"] = refresh.token
    return body


def _refresh(
    store: Store, oauth: OAuthState, client: ClientConfig, form: dict[str, str]
) -> dict[str, Any]:
    refresh = store.refresh_tokens.get(_required(form, "refresh_token"))
    account = store.accounts.get(refresh.email) if refresh is not None else None
    if refresh is None or account is None:
        raise OAuthError(400, "invalid_grant", "Token has been expired or revoked.")
    if refresh.client_id != client.client_id:
        raise OAuthError(401, "unauthorized_client", "Unauthorized")
    scopes = refresh.scopes
    if "scope" in form:
        asked = frozenset(parse_scopes(form["scope"]))
        if not asked <= refresh.scopes:
            missing = " ".join(sorted(asked - refresh.scopes))
            raise OAuthError(400, "invalid_scope", f"Some requested scopes were invalid: {missing}")
        scopes = asked or refresh.scopes
    # Google does not rotate refresh tokens: the response carries none (facts §1.4).
    return _issue(
        store, oauth, account, scopes, client_id=client.client_id, refresh=refresh, nonce=None
    )


def _issue(
    store: Store,
    oauth: OAuthState,
    account: Account,
    scopes: frozenset[str],
    *,
    client_id: str,
    refresh: RefreshToken | None,
    nonce: str | None,
) -> dict[str, Any]:
    """A new access token (and id_token, for identity scopes) as the token response body."""
    access = store.issue_access_token(
        client_id, account.email, scopes, refresh.token if refresh else None
    )
    body: dict[str, Any] = {
        "access_token": access.token,
        "expires_in": store.config.access_token_ttl,
        "scope": scope_string(scopes),
        "token_type": "Bearer",
    }
    if scopes & IDENTITY_SCOPES:
        body["id_token"] = oauth.signer.sign(id_claims(store, access, account, nonce))
    return body


def _verifier_matches(code: AuthCode, verifier: str) -> bool:
    if code.code_challenge is None or not PKCE_VALUE.fullmatch(verifier):
        return False
    if code.code_challenge_method == "S256":
        expected = b64url(hashlib.sha256(verifier.encode()).digest())
    else:
        expected = verifier
    return hmac.compare_digest(expected.encode(), code.code_challenge.encode())


def _revoke_issued(store: Store, code: AuthCode) -> None:
    """RFC 6749 §4.1.2: a replayed code voids what it yielded, refreshed tokens included."""
    for issued in code.issued:
        store.refresh_tokens.pop(issued, None)
        store.access_tokens.pop(issued, None)
    for value in [t for t, a in store.access_tokens.items() if a.refresh_token in code.issued]:
        del store.access_tokens[value]


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name)
    if not value:
        raise OAuthError(400, "invalid_request", f"Missing required parameter: {name}")
    return value


# Revoke, certs, userinfo -------------------------------------------------------------------


async def revoke(request: web.Request) -> web.Response:
    store = request.app[STORE]
    store.requests["oauth.revoke"] += 1
    form = await request.post()
    value = request.query.get("token") or form.get("token")
    if not isinstance(value, str) or not value:
        err = OAuthError(400, "invalid_request", "Missing required parameter: token")
        return _json(err.status, err.body())
    owner = store.refresh_tokens.get(value) or store.valid_access_token(value)
    if owner is None:
        err = OAuthError(400, "invalid_token", "Token expired or revoked")
        return _json(err.status, err.body())
    # Either kind of token ends the whole grant: its refresh and access tokens die together.
    store.revoke_grant(owner.email, owner.client_id)
    store.refresh_tokens.pop(value, None)
    store.access_tokens.pop(value, None)
    log.info("grant revoked: client=%s", owner.client_id)
    return _json(200, b"{}")


async def certs(request: web.Request) -> web.Response:
    """The public key of the ID-token signer, as Google's ``/oauth2/v3/certs`` JWKS."""
    return _json(200, compact_json(request.app[OAUTH].signer.jwks()))


async def userinfo(request: web.Request) -> web.Response:
    """OpenID Connect userinfo for a bearer access token with identity scopes."""
    store = request.app[STORE]
    store.requests["oauth.userinfo"] += 1
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    access = store.valid_access_token(value.strip()) if scheme.lower() == "bearer" else None
    if access is None:
        err = OAuthError(401, "invalid_token", "Invalid Credentials")
        return _json(err.status, err.body(), {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    account = store.accounts.get(access.email)
    if account is None or not access.scopes & IDENTITY_SCOPES:
        err = OAuthError(403, "insufficient_scope", "Insufficient Permission")
        return _json(err.status, err.body())
    info: dict[str, Any] = {"sub": account.sub}
    if EMAIL_SCOPE in access.scopes:
        info |= {"email": account.email, "email_verified": True}
    if PROFILE_SCOPE in access.scopes:
        info["name"] = account.name
    return _json(200, compact_json(info))


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=body,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )
