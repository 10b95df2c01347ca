"""Where a browser may be sent once linking is done: ``return_to``, normalised, then checked
against the allowlist, so the redirect goes exactly where the check looked::

    approved_return_to("https://App.Example/linked/%2e%2e/x", ("https://app.example/",))
    # "https://app.example/x"
    approved_return_to("https://app.example/linked/../admin", ("https://app.example/linked/",))
    # None: normalised, it is https://app.example/admin, outside the allowed path

Normalisation is RFC 3986 §6.2.2 and §6.2.3: scheme and host lower-cased, a default port
dropped, percent-encoded unreserved characters decoded (``%2e`` is ``.``), the remaining
escapes upper-cased, and dot segments removed (§5.2.4). Whatever a browser or a server could
read differently from this code is refused rather than guessed at: any whitespace, control or
non-ASCII character (browsers silently drop a tab, so ``/app/<TAB>../admin`` would become
``/app/../admin``), backslashes, userinfo, and escapes in the path that decode to a slash,
a backslash, a percent sign or a control character, or a ``..;`` segment (read by some
servers as ``..``). The query and fragment are kept as they came.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_LENGTH = 2048

_PORTS = {"http": "80", "https": "443"}
_HOST = re.compile(r"[a-z0-9.-]+|\[[0-9a-f:.]+\]")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# Escapes that must not be decoded and that a later reader might: "/", "\", "%" (a second
# decoding round), and control characters.
_REFUSED_ESCAPES = frozenset({0x2F, 0x5C, 0x25, 0x7F, *range(0x20)})


def normalise(value: str) -> str | None:
    """``value`` as a normalised absolute http(s) URL, or None if it is refused."""
    if not value or len(value) > MAX_LENGTH or not all("!" <= c <= "~" for c in value):
        return None  # empty, too long, whitespace, control or non-ASCII characters
    if "\\" in value:
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _PORTS or "@" in parts.netloc or not _HOST.fullmatch(host):
        return None
    netloc = host if port is None or str(port) == _PORTS[scheme] else f"{host}:{port}"
    path = _normalise_path(parts.path)
    if path is None:
        return None
    url = f"{scheme}://{netloc}{path}"
    if parts.query:
        url += f"?{parts.query}"
    if parts.fragment:
        url += f"#{parts.fragment}"
    return url


def _normalise_path(path: str) -> str | None:
    """The path with unreserved escapes decoded and dot segments removed; None if refused."""
    if "%" in _ESCAPE.sub("", path):
        return None  # a "%" that does not start a valid escape

    def decode(match: re.Match[str]) -> str:
        byte = int(match.group(1), 16)
        if chr(byte) in _UNRESERVED:
            return chr(byte)
        return f"%{match.group(1).upper()}"

    if any(int(m.group(1), 16) in _REFUSED_ESCAPES for m in _ESCAPE.finditer(path)):
        return None
    resolved = remove_dot_segments(_ESCAPE.sub(decode, path)) or "/"
    if not resolved.startswith("/"):
        return None
    if any(segment.split(";", 1)[0] in (".", "..") for segment in resolved.split("/")):
        return None  # "..;x" and the like: not a dot segment to RFC 3986, but to some servers
    return resolved


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: ``/a/b/../c/./d`` is ``/a/c/d``; ``..`` never climbs above the root."""
    output: list[str] = []
    for segment in path.split("/")[1:] if path.startswith("/") else path.split("/"):
        if segment == "..":
            if output:
                output.pop()
        elif segment != ".":
            output.append(segment)
    # A path ending in a dot segment names a directory: keep its trailing slash.
    if path.rsplit("/", 1)[-1] in (".", "..") and (not output or output[-1] != ""):
        output.append("")
    return "/" + "/".join(output) if path.startswith("/") else "/".join(output)


def _within(url: str, prefix: str) -> bool:
    target, allowed = urlsplit(url), urlsplit(prefix)
    if (target.scheme, target.netloc) != (allowed.scheme, allowed.netloc):
        return False
    base = allowed.path or "/"
    if base.endswith("/"):
        return target.path.startswith(base) or target.path == base.rstrip("/")
    return target.path == base or target.path.startswith(base + "/")


def approved_return_to(value: str, allowlist: tuple[str, ...]) -> str | None:
    """The normalised ``value`` if it lies under one of the allowlisted prefixes, else None.

    Each prefix is normalised the same way. Scheme, host and port must match exactly and the
    path must start with the prefix's path, so ``https://app.example/`` does not admit
    ``https://app.example.evil/`` and ``https://app.example/linked`` does not admit
    ``https://app.example/linkedin``. Redirect to the value returned, never to ``value``.
    """
    url = normalise(value)
    if url is None:
        return None
    for prefix in allowlist:
        allowed = normalise(prefix)
        if allowed is not None and _within(url, allowed):
            return url
    return None
