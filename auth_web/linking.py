"""Account linking: the consent link calling services ask for, the browser's start of it,
and Google's callback.

``GET /auth/url/{user_id}`` (bearer key) creates a single-use ``state`` bound to the user, the
scopes to ask for (the required ones plus any ``scope`` the service adds), a PKCE verifier, an
optional ``return_to`` and login hint, keeps it sealed in Redis for ``state_ttl`` seconds, and
answers ``{"url", "expires_at"}``, where ``url`` is this app's ``/auth/start`` (next to the
redirect URI). ``GET /auth/start`` is opened by the person's
browser: it binds the consent to that browser, once (a cookie, :mod:`auth_web.binding`), and
redirects to Google's consent page. ``GET /auth/callback`` is where Google sends the browser
back: it consumes the state (a replay finds nothing), refuses a browser other than the one
that started, exchanges the code with the verifier, checks the grant holds every scope the
consent asked for, stores the tokens encrypted, announces the link, and shows a page or
redirects to ``return_to``.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass
from urllib.parse import urlencode, urljoin

from aiohttp import web

from auth_web.binding import binding_secret, clear_binding, set_binding
from auth_web.deps import Deps, deps
from auth_web.pages import page
from auth_web.return_to import approved_return_to
from gcal.errors import GcalError, InternalError, InvalidRequest, ScopeMissing, UpstreamUnavailable
from gcal.keys import check_user_id
from gcal.scopes import unknown

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
# Routes a person's browser opens: they answer with pages, never JSON.
BROWSER_ROUTES = frozenset({"auth_start", "auth_callback"})
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}

_MAX_LOGIN_HINT = 320


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}},
        status=status,
        headers={"Cache-Control": "no-store"},
    )


def _authorized(request: web.Request, d: Deps) -> bool:
    """Whether the request carries one of the configured bearer keys (constant time)."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented:
        return False
    given = presented.strip().encode()
    # Compare against every key, so timing does not reveal which (if any) matched.
    keys = d.services.settings.api_keys
    matches = [hmac.compare_digest(given, k.get_secret_value().encode()) for k in keys]
    return any(matches)


@routes.get("/auth/url/{user_id}", name="auth_url")
async def auth_url(request: web.Request) -> web.Response:
    d = deps(request)
    s = d.services
    if not _authorized(request, d):
        return _json_error(401, "unauthorized", "a valid bearer key is required")
    try:
        user_id = check_user_id(request.match_info["user_id"])
    except InvalidRequest as err:
        return _json_error(400, err.code, err.message)
    return_to = request.query.get("return_to")
    if return_to is not None:
        # From here on only the normalised URL is used: it is what the allowlist approved.
        return_to = approved_return_to(return_to, s.settings.return_to_allowlist)
        if return_to is None:
            return _json_error(400, "invalid_request", "return_to is not an allowed URL")
    login_hint = request.query.get("login_hint")
    if login_hint is not None and (
        not login_hint or len(login_hint) > _MAX_LOGIN_HINT or not login_hint.isprintable()
    ):
        return _json_error(400, "invalid_request", "login_hint is not a valid hint")
    # Extra scopes a service asks for (repeated, or space-separated as in OAuth's own
    # parameter), e.g. those a scope_missing result named; added to the required ones.
    extra = [scope for value in request.query.getall("scope", []) for scope in value.split()]
    if unknown(extra):
        return _json_error(
            400,
            "invalid_request",
            "scope must name Google Calendar or sign-in scopes, as Google spells them",
        )
    scopes = tuple(dict.fromkeys((*s.accounts.required_scopes, *extra)))

    consent = await s.consents.begin(
        user_id, scopes=scopes, return_to=return_to, login_hint=login_hint
    )
    d.metrics.consent_urls.inc()
    log.info("consent url issued user=%s", user_id)
    # The start route sits next to the callback, on the host the binding cookie is set for.
    start = urljoin(str(s.settings.redirect_uri), "start")
    return web.json_response(
        {
            "url": f"{start}?{urlencode({'state': consent.state})}",
            "expires_at": consent.expires_at.isoformat().replace("+00:00", "Z"),
        },
        headers={"Cache-Control": "no-store"},
    )


@routes.get("/auth/start", name="auth_start")
async def auth_start(request: web.Request) -> web.Response:
    """Bind the consent to this browser (once), then send it on to Google's consent page."""
    d = deps(request)
    s = d.services
    state = request.query.get("state", "")
    if not state or len(state) > 512:
        return _show(NO_STATE)
    opened = await s.consents.bind(state)
    if opened is None:
        log.info("start with an unknown, expired or already opened state")
        return _show(STALE_STATE)
    url = s.oauth.consent_url(
        state=state,
        code_challenge=opened.code_challenge,
        scopes=opened.scopes or s.accounts.required_scopes,
        login_hint=opened.login_hint,
    )
    response = web.Response(status=302, headers={**_NO_STORE, "Location": url})
    set_binding(response, s.settings, state, opened.secret, max_age=opened.expires_in)
    return response


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a callback ended, for the user's page and the ``gcal_auth_callbacks`` metric."""

    metric: str
    status: int
    title: str
    message: str
    detail: str = "Nothing was linked. Start again from the app."


NO_STATE = Outcome(
    "bad_state", 400, "Sign-in link not valid", "This page needs a sign-in request to finish."
)
STALE_STATE = Outcome(
    "bad_state",
    400,
    "Sign-in link expired",
    "This sign-in request has expired or was already used.",
)
DENIED = Outcome(
    "denied",
    403,
    "Access not granted",
    "You chose not to give access to your Google Calendar.",
    "Nothing was linked. You can start again from the app at any time.",
)
GOOGLE_ERROR = Outcome("failed", 400, "Google sign-in failed", "Google reported an error.")
NO_CODE = Outcome("failed", 400, "Sign-in incomplete", "Google did not send an authorization code.")
UNREACHABLE = Outcome(
    "failed",
    502,
    "Google is not answering",
    "Google could not be reached to finish linking.",
    "Nothing was linked. Please try again in a minute.",
)
OTHER_BROWSER = Outcome(
    "other_browser",
    400,
    "Sign-in started in another browser",
    "This sign-in was not started in this browser, so it cannot be finished here.",
    "Nothing was linked. Start again from the app, in the browser you use it with.",
)
REFUSED = Outcome(
    "failed", 400, "Sign-in could not be completed", "Google did not accept this sign-in."
)
NOT_COMPLETED = Outcome(
    "failed",
    502,
    "Sign-in could not be completed",
    "This service could not finish linking your account with Google.",
)
SCOPE_MISSING = Outcome(
    "scope_missing",
    403,
    "Calendar permission missing",
    "Linking needs every calendar permission it asked for, and one was not given.",
    "Nothing was linked. Start again from the app and keep every permission ticked.",
)
_OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


def _show(outcome: Outcome, message: str | None = None) -> web.Response:
    return page(outcome.status, outcome.title, message or outcome.message, outcome.detail)


def _end(d: Deps, outcome: Outcome, message: str | None = None) -> web.Response:
    """The callback's page for ``outcome``, counted."""
    d.metrics.callbacks.labels(outcome.metric).inc()
    return _show(outcome, message)


@routes.get("/auth/callback", name="auth_callback")
async def auth_callback(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    state = request.query.get("state", "")
    if not state or len(state) > 512:
        return _end(d, NO_STATE)
    response = await _finish(request, d, state)
    clear_binding(response, d.services.settings, state)  # used up, whatever the outcome
    return response


async def _finish(request: web.Request, d: Deps, state: str) -> web.StreamResponse:
    query = request.query
    pending = await d.services.consents.consume(state)
    if pending is None:
        log.info("callback with unknown, expired or used state")
        return _end(d, STALE_STATE)
    user_id = pending.user_id
    if not pending.opened_by(binding_secret(request, state)):
        log.warning("callback from a browser that did not start the consent user=%s", user_id)
        return _end(d, OTHER_BROWSER)
    error = query.get("error")
    if error == "access_denied":
        log.info("consent denied user=%s", user_id)
        return _end(d, DENIED)
    if error:
        # Show Google's error code only if it looks like one (no attacker-chosen text).
        shown = error if _OAUTH_ERROR_CODE.fullmatch(error) else "unknown_error"
        log.info("consent failed user=%s error=%s", user_id, shown)
        return _end(d, GOOGLE_ERROR, f"Google reported an error: {shown}.")
    code = query.get("code")
    if not code:
        return _end(d, NO_CODE)

    try:
        await d.services.accounts.link_from_code(
            user_id, code, pending.verifier, required=pending.scopes
        )
    except UpstreamUnavailable:
        return _end(d, UNREACHABLE)
    except ScopeMissing:
        return _end(d, SCOPE_MISSING)
    except InternalError as err:
        log.error("linking failed user=%s: %s", user_id, err.message)
        return _end(d, NOT_COMPLETED)
    except GcalError as err:
        log.warning("code exchange failed user=%s code=%s", user_id, err.code)
        return _end(d, REFUSED)
    d.metrics.callbacks.labels("linked").inc()
    if pending.return_to:
        return web.Response(status=303, headers={**_NO_STORE, "Location": pending.return_to})
    return page(
        200,
        "Google Calendar linked",
        "Your Google Calendar is now linked.",
        "You can close this window.",
    )
