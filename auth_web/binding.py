"""The cookie that binds a consent to the browser that started it.

``/auth/start`` sets it, ``/auth/callback`` checks and clears it: the callback refuses a
consent finished in a browser other than the one that opened the link a calling service got,
so a link handed to someone else (or a consent URL lured out of one browser into another)
links nobody's account. The cookie holds a random secret; Redis keeps only its SHA-256 with
the state (:mod:`gcal.consent`)::

    set_binding(response, settings, state, secret, max_age=opened.expires_in)
    secret = binding_secret(request, state)
    clear_binding(response, settings, state)

It is ``HttpOnly`` (no script reads it), ``SameSite=Lax`` (sent on the top-level GET that
Google's redirect makes, not on cross-site subrequests), scoped to the callback's path only,
``Secure`` when the redirect URI is https, and lives no longer than the state. Its name
carries a piece of the state's digest, so consents started in two tabs do not clobber each
other.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from gcal.consent import state_digest
from gcal.settings import Settings

_PREFIX = "gcal_consent_"


def cookie_name(state: str) -> str:
    return _PREFIX + state_digest(state)[:16]


def _path(settings: Settings) -> str:
    return urlsplit(str(settings.redirect_uri)).path or "/"


def set_binding(
    response: web.StreamResponse, settings: Settings, state: str, secret: str, *, max_age: int
) -> None:
    response.set_cookie(
        cookie_name(state),
        secret,
        max_age=max_age,
        path=_path(settings),
        secure=str(settings.redirect_uri).startswith("https:"),
        httponly=True,
        samesite="Lax",
    )


def binding_secret(request: web.Request, state: str) -> str | None:
    return request.cookies.get(cookie_name(state))


def clear_binding(response: web.StreamResponse, settings: Settings, state: str) -> None:
    response.del_cookie(
        cookie_name(state),
        path=_path(settings),
        secure=str(settings.redirect_uri).startswith("https:"),
        httponly=True,
        samesite="Lax",
    )
