"""The HTML pages a person sees at the emulator's authorization endpoint.

Two pages: the consent page (choose an account, untick scopes, approve or deny) and the
error page Google shows instead of redirecting (``Error 400: redirect_uri_mismatch``). Both
are small, static HTML with no scripts; everything taken from the request is escaped here.
The handlers that serve them live in :mod:`emulator.authorization`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape
from urllib.parse import urlsplit

from aiohttp import web

_AUTH = "https://www.googleapis.com/auth/"
_CALENDAR = _AUTH + "calendar"

# The wording of Google's consent screen, where it is known; other scopes show their URL.
SCOPE_DESCRIPTIONS = {
    "openid": "Associate you with your personal info on Google",
    _AUTH + "userinfo.email": "See your primary Google Account email address",
    _AUTH + "userinfo.profile": (
        "See your personal info, including any personal info you've made publicly available"
    ),
    _CALENDAR: "See, edit, share, and permanently delete all the calendars you can access",
    _CALENDAR + ".readonly": "See and download any calendar you can access",
    _CALENDAR + ".events": "View and edit events on all your calendars",
    _CALENDAR + ".events.readonly": "View events on all your calendars",
    _CALENDAR + ".events.owned": "See, create, change, and delete events on calendars you own",
    _CALENDAR + ".events.owned.readonly": "See the events on calendars you own",
    _CALENDAR + ".events.public.readonly": "See the events on public calendars",
    _CALENDAR + ".events.freebusy": "See the availability on calendars you have access to",
    _CALENDAR + ".freebusy": "View your availability in your calendars",
    _CALENDAR + ".app.created": (
        "Make secondary calendars, and see, create, change, and delete events on them"
    ),
    _CALENDAR + ".calendarlist": "See, add, and remove calendars you're subscribed to",
    _CALENDAR + ".calendarlist.readonly": "See the list of calendars you're subscribed to",
    _CALENDAR + ".calendars": (
        "See and change the properties of calendars you have access to, and create "
        "secondary calendars"
    ),
    _CALENDAR + ".calendars.readonly": (
        "See the title, description, default time zone, and other properties of calendars "
        "you have access to"
    ),
    _CALENDAR + ".acls": "See and change the sharing permissions of calendars you own",
    _CALENDAR + ".acls.readonly": "See the sharing permissions of calendars you own",
    _CALENDAR + ".settings": "See and change your Calendar settings",
    _CALENDAR + ".settings.readonly": "View your Calendar settings",
}

_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f1f3f4; color: #202124; }
main { max-width: 36rem; margin: 2rem auto; padding: 1.5rem 2rem; background: #fff;
       border: 1px solid #dadce0; border-radius: 8px; }
h1 { font-size: 1.4rem; font-weight: 500; }
fieldset { border: 1px solid #dadce0; border-radius: 4px; margin: 1rem 0; }
.choice { margin: .4rem 0; }
code { font-size: .8rem; color: #5f6368; word-break: break-all; }
.note, .fixed { color: #5f6368; font-size: .9rem; }
.alert { color: #b3261e; font-weight: 500; }
.actions { display: flex; gap: 1rem; }
button { font: inherit; padding: .5rem 1.5rem; border-radius: 4px; border: 1px solid #dadce0;
         background: #fff; cursor: pointer; }
button[value=approve] { background: #1a73e8; color: #fff; border-color: #1a73e8; }
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


@dataclass(frozen=True, slots=True)
class ConsentForm:
    """What the consent page shows for one pending authorization request."""

    action: str  # where the form posts
    request_id: str
    client_name: str
    redirect_uri: str
    scopes: tuple[str, ...]  # requested, in the order shown
    fixed_scopes: frozenset[str]  # shown ticked and not untickable
    accounts: tuple[str, ...]  # existing accounts' emails
    login_hint: str = ""
    error: str = ""  # shown above the form when a submission was refused


def consent_page(form: ConsentForm, *, status: int = 200) -> web.Response:
    """The consent page: account choice, scope checkboxes, Approve and Deny."""
    name = escape(form.client_name)
    hint = form.login_hint.strip().lower()
    if hint:
        chosen = hint if hint in form.accounts else ""
    else:
        chosen = form.accounts[0] if form.accounts else ""
    accounts = [
        _radio(f"account-{i}", "account", email, email, checked=email == chosen)
        for i, email in enumerate(form.accounts)
    ]
    accounts.append(_radio("account-new", "account", "", "Use another account", checked=not chosen))
    typed = hint if hint not in form.accounts else ""
    scopes = [
        _scope_choice(i, scope, scope in form.fixed_scopes) for i, scope in enumerate(form.scopes)
    ]
    alert = f'<p class="alert" role="alert">{escape(form.error)}</p>' if form.error else ""
    body = f"""
<h1>{name} wants to access your Google Account</h1>
<p class="note">This is a local Google emulator: no real account or password is involved.</p>
{alert}
<form method="post" action="{escape(form.action)}">
<input type="hidden" name="request_id" value="{escape(form.request_id)}">
<fieldset>
<legend>Choose an account</legend>
{"".join(accounts)}
<div class="choice"><label for="email">Or type the email of any account</label>
<input type="email" id="email" name="email" value="{escape(typed)}" autocomplete="email"></div>
</fieldset>
<fieldset>
<legend>{name} will be able to:</legend>
{"".join(scopes)}
</fieldset>
<p class="note">You will be sent back to <code>{escape(form.redirect_uri)}</code>.</p>
<div class="actions">
<button type="submit" name="action" value="approve">Approve</button>
<button type="submit" name="action" value="deny">Deny</button>
</div>
</form>"""
    title = f"Sign in to continue to {form.client_name}"
    return _page(title, body, status=status, redirect_uri=form.redirect_uri)


def error_page(error: str, description: str, *, status: int = 400) -> web.Response:
    """Google's own error page, shown instead of redirecting (bad client or redirect_uri)."""
    body = f"""
<h1>Access blocked: Authorization Error</h1>
<p class="alert">Error {status}: {escape(error)}</p>
<p>{escape(description)}</p>"""
    return _page(f"Error {status}: {error}", body, status=status)


def _radio(id_: str, name: str, value: str, label: str, *, checked: bool) -> str:
    mark = " checked" if checked else ""
    return (
        f'<div class="choice"><input type="radio" id="{id_}" name="{name}" '
        f'value="{escape(value)}"{mark}> <label for="{id_}">{escape(label)}</label></div>\n'
    )


def _scope_choice(index: int, scope: str, fixed: bool) -> str:
    id_ = f"scope-{index}"
    description = escape(SCOPE_DESCRIPTIONS.get(scope, scope))
    if fixed:
        # A disabled box is not submitted; the server always keeps fixed scopes.
        control = (
            f'<input type="checkbox" id="{id_}" checked disabled aria-describedby="{id_}-why">'
        )
        why = f' <span class="fixed" id="{id_}-why">(always shared)</span>'
    else:
        control = f'<input type="checkbox" id="{id_}" name="scope" value="{escape(scope)}" checked>'
        why = ""
    return (
        f'<div class="choice">{control} <label for="{id_}">{description}'
        f"<br><code>{escape(scope)}</code></label>{why}</div>\n"
    )


def _page(title: str, body: str, *, status: int, redirect_uri: str | None = None) -> web.Response:
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<main>{body}
</main>
</body>
</html>
"""
    return web.Response(
        status=status, text=html, content_type="text/html", headers=_headers(redirect_uri)
    )


def _headers(redirect_uri: str | None) -> dict[str, str]:
    # Browsers apply form-action to the redirect that follows a form post, so the client's
    # origin must be allowed too, or approving would be blocked after the 302.
    form_action = " ".join(["'self'", *_origins([redirect_uri] if redirect_uri else [])])
    policy = (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action {form_action}; "
        "base-uri 'none'; frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
    }


def _origins(urls: Iterable[str]) -> list[str]:
    origins = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme and parts.netloc:
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins
