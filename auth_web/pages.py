"""The few HTML pages a user's browser sees: small, accessible, no scripts, nothing cached.

Every page carries ``Cache-Control: no-store``, ``Referrer-Policy: no-referrer`` and a strict
Content-Security-Policy (no scripts, no styles, no frames, no forms). Text from the request is
escaped; codes, tokens and secrets are never put on a page.
"""

from __future__ import annotations

import html

from aiohttp import web

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
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
</head>
<body>
<main>
<h1>{title}</h1>
<p role="status">{message}</p>
{detail}</main>
</body>
</html>
"""


def page(status: int, title: str, message: str, detail: str = "") -> web.Response:
    """An HTML page; ``title``, ``message`` and ``detail`` are plain text (escaped here)."""
    body = _TEMPLATE.format(
        title=html.escape(title),
        message=html.escape(message),
        detail=f"<p>{html.escape(detail)}</p>\n" if detail else "",
    )
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        charset="utf-8",
        headers=SECURITY_HEADERS,
    )
