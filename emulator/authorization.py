"""Google's authorization endpoint: the request, the consent it asks for, the redirect back.

Routes (registered by :func:`emulator.oauth.setup`, which names them):

* ``GET /o/oauth2/v2/auth`` (``oauth.authorize``): checks the request in Google's order
  (:class:`AuthRequest`), then shows the consent page (:mod:`emulator.consent`), approves at
  once (``auto_approve``) or, for ``prompt=none``, answers without a page.
* ``POST /o/oauth2/v2/auth/consent`` (``oauth.consent``): the consent form's answer.

A pending authorization request (:class:`PendingRequest`) waits server-side in
:class:`emulator.oauth.OAuthState`, keyed by a random id, so the consent form cannot alter
what was asked for. Approval records the grant, issues an authorization code and redirects
to the client; errors either show Google's error page or redirect, as Google does
(google-api-facts.md §1.2).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from emulator.config import ClientConfig, EmulatorConfig
from emulator.consent import ConsentForm, consent_page, error_page
from emulator.keys import OAUTH, STORE
from emulator.scopes import IDENTITY_SCOPES, parse_scopes, scope_string
from emulator.state import Account, AuthCode, Grant, Store, new_token

log = logging.getLogger(__name__)

AUTHORIZE_PATH = "/o/oauth2/v2/auth"
CONSENT_PATH = "/o/oauth2/v2/auth/consent"

_PROMPTS = frozenset({"none", "consent", "select_account"})
# RFC 7636 §4.1: code verifiers (and plain challenges) are 43-128 unreserved characters.
PKCE_VALUE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# How long a consent page stays answerable; a person may be slow, unlike a code exchange.
_PENDING_TTL = 3600.0


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
class PendingRequest:
    """An authorization request waiting for its consent page's answer."""

    request: AuthRequest
    expires_at: float


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
    oauth.pending[request_id] = PendingRequest(auth, now + _PENDING_TTL)
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
    scopes = parse_scopes(query.get("scope", ""))
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
        if not PKCE_VALUE.fullmatch(challenge):
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
        "scope": scope_string(scopes),
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
