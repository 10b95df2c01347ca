"""Account linking: the consent URL calling services ask for, and Google's callback.

``GET /auth/url/{user_id}`` (bearer key) creates a single-use ``state`` bound to the user, a
PKCE verifier and an optional ``return_to``, keeps it sealed in Redis for ``state_ttl``
seconds, and answers ``{"url", "expires_at"}``. ``GET /auth/callback`` is where Google sends
the user's browser: it consumes the state (GETDEL: a replay finds nothing), exchanges the code
with the verifier, checks the granted scopes, stores the tokens encrypted, announces the link,
and shows a page or redirects to ``return_to``.
"""

from __future__ import annotations

import hmac
import logging
import re
from dataclasses import dataclass

from aiohttp import web

from auth_web.deps import Deps, deps
from auth_web.pages import page
from auth_web.return_to import approved_return_to
from gcal.errors import GcalError, InternalError, InvalidRequest, ScopeMissing, UpstreamUnavailable
from gcal.keys import check_user_id

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
# Routes a person's browser opens: they answer with pages, never JSON.
BROWSER_ROUTES = frozenset({"auth_callback"})

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

    consent = await s.consents.begin(user_id, return_to=return_to)
    d.metrics.consent_urls.inc()
    log.info("consent url issued user=%s", user_id)
    return web.json_response(
        {
            "url": s.oauth.consent_url(
                state=consent.state, code_challenge=consent.code_challenge, login_hint=login_hint
            ),
            "expires_at": consent.expires_at.isoformat().replace("+00:00", "Z"),
        },
        headers={"Cache-Control": "no-store"},
    )


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
    "Linking needs permission to see and edit your calendar events, which was not given.",
    "Nothing was linked. Start again and keep the calendar permission ticked.",
)
_OAUTH_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


def _end(d: Deps, outcome: Outcome, message: str | None = None) -> web.Response:
    d.metrics.callbacks.labels(outcome.metric).inc()
    return page(outcome.status, outcome.title, message or outcome.message, outcome.detail)


@routes.get("/auth/callback", name="auth_callback")
async def auth_callback(request: web.Request) -> web.StreamResponse:
    d = deps(request)
    query = request.query
    state = query.get("state", "")
    if not state or len(state) > 512:
        return _end(d, NO_STATE)
    pending = await d.services.consents.consume(state)
    if pending is None:
        log.info("callback with unknown, expired or used state")
        return _end(d, STALE_STATE)
    user_id = pending.user_id
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
        await d.services.accounts.link_from_code(user_id, code, pending.verifier)
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
        raise web.HTTPSeeOther(
            location=pending.return_to,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )
    return page(
        200,
        "Google Calendar linked",
        "Your Google Calendar is now linked.",
        "You can close this window.",
    )
