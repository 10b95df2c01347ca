"""Google's OAuth 2.0 web-server flow: authorization, consent, token, revoke, ID tokens.

Routes (names are what fault injection targets):

* ``GET /o/oauth2/v2/auth`` (``oauth.authorize``): checks the request, then shows the consent
  page (:mod:`emulator.consent`), approves at once (``auto_approve``) or, for
  ``prompt=none``, answers without a page.
* ``POST /o/oauth2/v2/auth/consent`` (``oauth.consent``): the consent form's answer.
* ``POST /token`` (``oauth.token``): ``authorization_code`` and ``refresh_token`` grants.
* ``POST /revoke`` (``oauth.revoke``): revokes the whole grant a token belongs to.
* ``GET /oauth2/v3/certs`` (``oauth.certs``) and ``GET /v1/userinfo`` (``oauth.userinfo``).

The rules are google-api-facts.md §1. A pending authorization request waits server-side,
keyed by a random id, so the consent form cannot alter what was asked for. Each handler
counts its calls in ``store.requests`` by route name (and ``oauth.token.<grant_type>``);
calls answered by fault injection never reach a handler, so are not counted. Tokens, codes
and secrets never reach a log line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

from aiohttp import web
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emulator.config import ClientConfig, EmulatorConfig
from emulator.consent import ConsentForm, consent_page, error_page
from emulator.errors import OAuthError
from emulator.keys import STORE
from emulator.state import AccessToken, Account, AuthCode, Grant, RefreshToken, Store, new_token

log = logging.getLogger(__name__)

AUTHORIZE_PATH = "/o/oauth2/v2/auth"
CONSENT_PATH = "/o/oauth2/v2/auth/consent"

OPENID = "openid"
EMAIL_SCOPE = "https://www.googleapis.com/auth/userinfo.email"
PROFILE_SCOPE = "https://www.googleapis.com/auth/userinfo.profile"
# Scopes that mean "who you are": they bring an id_token and cannot be unticked.
IDENTITY_SCOPES = frozenset({OPENID, EMAIL_SCOPE, PROFILE_SCOPE})
# Google grants the OIDC short names as the userinfo scopes (facts §1.2).
_SCOPE_ALIASES = {"email": EMAIL_SCOPE, "profile": PROFILE_SCOPE}
_PROMPTS = frozenset({"none", "consent", "select_account"})
# RFC 7636 §4.1: code verifiers (and plain challenges) are 43-128 unreserved characters.
_PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# How long a consent page stays answerable; a person may be slow, unlike a code exchange.
_PENDING_TTL = 3600.0
_ID_TOKEN_TTL = 3600
# Google's token responses are never cached (typebot#580 captured headers).
_NO_STORE = {
    "Cache-Control": "no-cache, no-store, max-age=0, must-revalidate",
    "Pragma": "no-cache",
    "Expires": "Mon, 01 Jan 1990 00:00:00 GMT",
}


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A checked authorization request, as the client sent it."""

    client: ClientConfig
    redirect_uri: str
    scopes: tuple[str, ...]  # aliases expanded, duplicates removed, in request order
    state: str | None
    offline: bool
    prompt: frozenset[str]
    include_granted_scopes: bool
    login_hint: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None


@dataclass(slots=True)
class _Pending:
    request: AuthRequest
    expires_at: float


class IdTokenSigner:
    """An RS256 key made for this emulator; signs ID tokens and publishes itself as JWKS."""

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self._key.public_key().public_numbers()
        self._n = _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"))
        self._e = _b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big"))
        self.kid = hashlib.sha256(f"{self._n}.{self._e}".encode()).hexdigest()[:40]

    def jwks(self) -> dict[str, Any]:
        key = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid}
        return {"keys": [{**key, "n": self._n, "e": self._e}]}

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        signing_input = ".".join(_b64url(_compact_json(part)) for part in (header, claims))
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"


@dataclass(slots=True)
class OAuthState:
    """What the OAuth endpoints keep beside the :class:`Store`: consent pages and the key."""

    pending: dict[str, _Pending] = field(default_factory=dict)
    _signer: IdTokenSigner | None = None

    @property
    def signer(self) -> IdTokenSigner:
        # Made on first use: generating an RSA key costs tens of milliseconds per app.
        if self._signer is None:
            self._signer = IdTokenSigner()
        return self._signer


OAUTH: web.AppKey[OAuthState] = web.AppKey("oauth", OAuthState)


def setup(app: web.Application) -> None:
    """Register the OAuth routes on ``app``."""
    app[OAUTH] = OAuthState()
    app.router.add_get(AUTHORIZE_PATH, authorize, name="oauth.authorize")
    app.router.add_post(CONSENT_PATH, consent, name="oauth.consent")
    app.router.add_post("/token", token, name="oauth.token")
    app.router.add_post("/revoke", revoke, name="oauth.revoke")
    app.router.add_get("/oauth2/v3/certs", certs, name="oauth.certs")
    app.router.add_get("/v1/userinfo", userinfo, name="oauth.userinfo")


# Authorization -----------------------------------------------------------------------------


class _Refused(Exception):
    """An authorization request answered with an error page or an error redirect."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


async def authorize(request: web.Request) -> web.Response:
    store = request.app[STORE]
    store.requests["oauth.authorize"] += 1
    try:
        auth = _parse_authorization(store, request.query)
    except _Refused as refused:
        return refused.response
    if "none" in auth.prompt:
        return _answer_silently(store, auth)
    if store.config.auto_approve:
        email = _hinted_email(store, auth.login_hint)
        if email is None:
            return error_page(
                "invalid_request",
                "This emulator approves consent automatically (auto_approve), so it needs "
                "login_hint=<email> to know which account approves.",
            )
        return _approve(store, auth, email, frozenset(auth.scopes), consent_shown=True)
    oauth = request.app[OAUTH]
    now = store.clock.now()
    for stale in [k for k, p in oauth.pending.items() if p.expires_at <= now]:
        del oauth.pending[stale]
    request_id = secrets.token_urlsafe(24)
    oauth.pending[request_id] = _Pending(auth, now + _PENDING_TTL)
    return consent_page(_consent_form(store, auth, request_id))


async def consent(request: web.Request) -> web.Response:
    store = request.app[STORE]
    store.requests["oauth.consent"] += 1
    oauth = request.app[OAUTH]
    form = await request.post()
    field_value = form.get("request_id")
    request_id = field_value if isinstance(field_value, str) else ""
    pending = oauth.pending.get(request_id)
    if pending is None or pending.expires_at <= store.clock.now():
        return error_page(
            "invalid_request",
            "This sign-in request has expired or was already answered. "
            "Start again from the application.",
        )
    auth = pending.request
    action = form.get("action")
    if action == "deny":
        del oauth.pending[request_id]
        log.info("consent denied: client=%s", auth.client.client_id)
        return _error_redirect(store.config, auth, "access_denied")
    # A typed email wins over the (pre-selected) account choice: typing is deliberate.
    typed, chosen = form.get("email"), form.get("account")
    email = typed if isinstance(typed, str) and typed.strip() else chosen
    if action != "approve" or not isinstance(email, str) or not _looks_like_email(email):
        message = (
            "Choose an account, or type the email address of another one."
            if action == "approve"
            else "Choose Approve or Deny."
        )
        return consent_page(_consent_form(store, auth, request_id, message), status=400)
    ticked = {v for v in form.getall("scope", []) if isinstance(v, str)}
    granted = frozenset(s for s in auth.scopes if s in ticked or s in IDENTITY_SCOPES)
    del oauth.pending[request_id]
    if not granted:
        # Everything unticked: nothing to grant, which the client sees as a refusal.
        return _error_redirect(store.config, auth, "access_denied")
    return _approve(store, auth, email, granted, consent_shown=True)


def _parse_authorization(store: Store, query: Mapping[str, str]) -> AuthRequest:
    """Check an authorization request in Google's order; raise :class:`_Refused` if bad."""
    config = store.config
    client_id = query.get("client_id")
    if not client_id:
        raise _Refused(error_page("invalid_request", "Missing required parameter: client_id"))
    client = store.clients.get(client_id)
    if client is None:
        raise _Refused(error_page("invalid_client", "The OAuth client was not found."))
    redirect_uri = query.get("redirect_uri")
    if not redirect_uri:
        raise _Refused(error_page("invalid_request", "Missing required parameter: redirect_uri"))
    if redirect_uri not in client.redirect_uris:
        raise _Refused(
            error_page(
                "redirect_uri_mismatch",
                "You can't sign in to this app because it doesn't comply with Google's OAuth "
                f"2.0 policy. Request details: redirect_uri={redirect_uri}",
            )
        )
    # From here the client is known and the redirect_uri is its own: errors may redirect.
    state = query.get("state")

    def invalid(description: str) -> _Refused:
        if not config.redirect_invalid_request:
            return _Refused(error_page("invalid_request", description))
        return _Refused(
            _redirect(config, redirect_uri, _error_params("invalid_request", state, description))
        )

    response_type = query.get("response_type")
    if not response_type:
        raise invalid("Required parameter is missing: response_type")
    if response_type != "code":
        # RFC 6749 §4.1.2.1; the emulator implements the code flow only.
        raise _Refused(
            _redirect(
                config,
                redirect_uri,
                _error_params("unsupported_response_type", state, "Only 'code' is supported."),
            )
        )
    scopes = _parse_scopes(query.get("scope", ""))
    if not scopes:
        raise invalid("Missing required parameter: scope")
    access_type = query.get("access_type", "online")
    if access_type not in ("online", "offline"):
        raise invalid(f"Invalid access_type: {access_type}")
    prompt = frozenset(query.get("prompt", "").split())
    if not prompt <= _PROMPTS:
        raise invalid(f"Invalid prompt: {query.get('prompt')}")
    if "none" in prompt and len(prompt) > 1:
        raise invalid("prompt=none must not be combined with other values.")
    challenge = query.get("code_challenge") or None
    method = query.get("code_challenge_method") or None
    if challenge is not None:
        method = method or "plain"  # facts §1.2: plain when a challenge comes without a method
        if method not in ("S256", "plain"):
            raise invalid(f"Invalid code_challenge_method: {method}")
        if not _PKCE_VALUE.fullmatch(challenge):
            raise invalid("Invalid code_challenge.")
    return AuthRequest(
        client=client,
        redirect_uri=redirect_uri,
        scopes=scopes,
        state=state,
        offline=access_type == "offline",
        prompt=prompt,
        include_granted_scopes=query.get("include_granted_scopes") == "true",
        login_hint=query.get("login_hint", ""),
        nonce=query.get("nonce") or None,
        code_challenge=challenge,
        code_challenge_method=method if challenge is not None else None,
    )


def _parse_scopes(raw: str) -> tuple[str, ...]:
    expanded = (_SCOPE_ALIASES.get(s, s) for s in raw.split())
    return tuple(dict.fromkeys(expanded))


def _answer_silently(store: Store, auth: AuthRequest) -> web.Response:
    """``prompt=none``: a code if the hinted account already consented to everything."""
    # The emulator has no browser session; login_hint stands in for the signed-in user.
    account = _hinted_account(store, auth.login_hint)
    if account is None:
        return _error_redirect(store.config, auth, "login_required")
    grant = store.grants.get((auth.client.client_id, account.email))
    if grant is None or not set(auth.scopes) <= grant.scopes:
        return _error_redirect(store.config, auth, store.config.prompt_none_error)
    return _approve(store, auth, account.email, frozenset(auth.scopes), consent_shown=False)


def _approve(
    store: Store, auth: AuthRequest, email: str, granted: frozenset[str], *, consent_shown: bool
) -> web.Response:
    """Record consent and redirect to the client with a fresh authorization code."""
    config = store.config
    client_id = auth.client.client_id
    account = store.account(email)
    key = (client_id, account.email)
    first = key not in store.grants
    grant = store.grants.setdefault(key, Grant(client_id, account.email))
    earlier = frozenset(grant.scopes)
    grant.scopes |= granted
    scopes = granted | earlier if auth.include_granted_scopes else granted
    code = AuthCode(
        code=new_token("4/0A"),
        client_id=client_id,
        email=account.email,
        redirect_uri=auth.redirect_uri,
        scopes=scopes,
        # facts §1.2: a refresh token only offline, and only on first consent or when forced.
        issue_refresh_token=auth.offline and (first or "consent" in auth.prompt),
        expires_at=store.clock.now() + config.code_ttl,
        code_challenge=auth.code_challenge,
        code_challenge_method=auth.code_challenge_method,
        nonce=auth.nonce,
    )
    store.codes[code.code] = code
    log.info("authorization code issued: client=%s first_grant=%s", client_id, first)
    params = {} if auth.state is None else {"state": auth.state}
    params |= {
        "code": code.code,
        "scope": _scope_string(scopes),
        "authuser": "0",
        "prompt": "consent" if consent_shown else "none",
    }
    return _redirect(config, auth.redirect_uri, params)


def _consent_form(store: Store, auth: AuthRequest, request_id: str, error: str = "") -> ConsentForm:
    return ConsentForm(
        action=CONSENT_PATH,
        request_id=request_id,
        client_name=auth.client.name,
        redirect_uri=auth.redirect_uri,
        scopes=auth.scopes,
        fixed_scopes=IDENTITY_SCOPES,
        accounts=tuple(sorted(store.accounts)),
        login_hint=auth.login_hint,
        error=error,
    )


def _hinted_account(store: Store, hint: str) -> Account | None:
    """The account ``login_hint`` names, by email or by ``sub`` (facts §1.2)."""
    hint = hint.strip().lower()
    found = store.accounts.get(hint)
    if found is not None or not hint:
        return found
    return next((a for a in store.accounts.values() if a.sub == hint), None)


def _hinted_email(store: Store, hint: str) -> str | None:
    account = _hinted_account(store, hint)
    if account is not None:
        return account.email
    return hint if _looks_like_email(hint) else None


def _looks_like_email(value: str) -> bool:
    local, at, domain = value.strip().partition("@")
    return bool(local and at and "." in domain and not any(c.isspace() for c in value.strip()))


def _error_params(error: str, state: str | None, description: str | None) -> dict[str, str]:
    params = {"error": error}
    if description:
        params["error_description"] = description
    if state is not None:
        params["state"] = state
    return params


def _error_redirect(config: EmulatorConfig, auth: AuthRequest, error: str) -> web.Response:
    return _redirect(config, auth.redirect_uri, _error_params(error, auth.state, None))


def _redirect(config: EmulatorConfig, redirect_uri: str, params: dict[str, str]) -> web.Response:
    """302 to ``redirect_uri`` with ``params`` added to any query it already has."""
    if config.redirect_includes_iss:
        params = {**params, "iss": config.public_url}  # RFC 9207; Google: accounts.google.com
    parts = urlsplit(redirect_uri)
    query = urlencode(params)
    if parts.query:
        query = f"{parts.query}&{query}"
    location = urlunsplit(parts._replace(query=query))
    headers = {"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return web.Response(status=302, headers=headers)


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
    return _json(200, _compact_json(body), _NO_STORE)


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
        asked = frozenset(_parse_scopes(form["scope"]))
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
        "scope": _scope_string(scopes),
        "token_type": "Bearer",
    }
    if scopes & IDENTITY_SCOPES:
        body["id_token"] = oauth.signer.sign(_id_claims(store, access, account, nonce))
    return body


def _id_claims(
    store: Store, access: AccessToken, account: Account, nonce: str | None
) -> dict[str, Any]:
    now = int(store.clock.now())
    digest = hashlib.sha256(access.token.encode()).digest()
    claims: dict[str, Any] = {
        # The emulator is its own issuer (Google: https://accounts.google.com).
        "iss": store.config.public_url,
        "azp": access.client_id,
        "aud": access.client_id,
        "sub": account.sub,
        "at_hash": _b64url(digest[: len(digest) // 2]),  # OIDC Core §3.1.3.6
        "iat": now,
        "exp": now + _ID_TOKEN_TTL,
    }
    if EMAIL_SCOPE in access.scopes:
        claims |= {"email": account.email, "email_verified": True}
    if PROFILE_SCOPE in access.scopes:
        claims["name"] = account.name
    if nonce is not None:
        claims["nonce"] = nonce
    return claims


def _verifier_matches(code: AuthCode, verifier: str) -> bool:
    if code.code_challenge is None or not _PKCE_VALUE.fullmatch(verifier):
        return False
    if code.code_challenge_method == "S256":
        expected = _b64url(hashlib.sha256(verifier.encode()).digest())
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
    return _json(200, _compact_json(request.app[OAUTH].signer.jwks()))


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
    return _json(200, _compact_json(info))


# Encoding ----------------------------------------------------------------------------------


def _json(status: int, body: bytes, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=body,
        content_type="application/json",
        charset="utf-8",
        headers=headers,
    )


def _compact_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _scope_string(scopes: frozenset[str]) -> str:
    return " ".join(sorted(scopes))
