"""The few HTML pages a user's browser sees: small, accessible, no scripts, nothing cached.

Every page (linked, denied, permission missing, expired or foreign link, Google unreachable,
the last-resort 500) is one card in the look of Google's consent page the user just left: a
mark, a heading, what happened, what to do. The one stylesheet is inlined and allowed by its
hash in the Content-Security-Policy (``style-src 'sha256-...'``, computed here at import), so
nothing else may style, script, frame or post from a page, and no second request or route
is needed (the pages also render behind a path prefix). Every page carries
``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer``. Text from the request is
escaped; codes, tokens and secrets are never put on a page.
"""

from __future__ import annotations

import base64
import hashlib
import html

from aiohttp import web

# Colours and type of the consent page (emulator/consent.py, after Google's): a white card
# on grey, Google blue for success, Google red for a problem.
STYLE = """
:root { color-scheme: light; }
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f1f3f4; color: #202124; }
main { max-width: 32rem; margin: 3rem auto; padding: 2rem; background: #fff;
       border: 1px solid #dadce0; border-radius: 8px; text-align: center; }
.mark { width: 3rem; height: 3rem; margin: 0 auto 1rem; border-radius: 50%; color: #fff;
        font-size: 1.75rem; line-height: 3rem; font-weight: 500; }
.ok .mark { background: #1a73e8; }
.problem .mark { background: #d93025; }
h1 { font-size: 1.4rem; font-weight: 500; margin: 0 0 .5rem; }
.ok h1 { color: #1a73e8; }
p { margin: .5rem 0; }
.detail { color: #5f6368; font-size: .9rem; }
.product { color: #5f6368; font-size: .8rem; margin-top: 1.5rem; border-top: 1px solid #dadce0;
           padding-top: 1rem; }
"""
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        f"default-src 'none'; style-src '{STYLE_HASH}'; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main class="{tone}">
<p class="mark" aria-hidden="true">{mark}</p>
<h1>{title}</h1>
<p role="status">{message}</p>
{detail}<p class="product">Google Calendar linking</p>
</main>
</body>
</html>
"""


def page(status: int, title: str, message: str, detail: str = "") -> web.Response:
    """An HTML page; ``title``, ``message`` and ``detail`` are plain text (escaped here).
    A 2xx page is a success (a check mark), any other a problem (an exclamation mark)."""
    ok = 200 <= status < 300
    body = _TEMPLATE.format(
        style=STYLE,
        tone="ok" if ok else "problem",
        mark="\N{CHECK MARK}" if ok else "!",
        title=html.escape(title),
        message=html.escape(message),
        detail=f'<p class="detail">{html.escape(detail)}</p>\n' if detail else "",
    )
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )
