"""``return_to`` normalisation: the allowlist judges the URL the browser will really be sent to."""

from __future__ import annotations

import pytest

from auth_web.return_to import approved_return_to, normalise, remove_dot_segments

ALLOWLIST = ("https://app.example/linked/", "https://other.example:8443/exact")


@pytest.mark.parametrize(
    ("path", "resolved"),
    [
        # RFC 3986 §5.2.4's own examples, and the edges of the algorithm.
        ("/a/b/c/./../../g", "/a/g"),
        ("mid/content=5/../6", "mid/6"),
        ("/a/b/..", "/a/"),
        ("/a/.", "/a/"),
        ("/..", "/"),
        ("/../../x", "/x"),
        ("/a//b/../c", "/a//c"),
        ("/a/b/", "/a/b/"),
        ("/", "/"),
    ],
)
def test_dot_segments_are_removed_as_rfc_3986_says(path: str, resolved: str) -> None:
    assert remove_dot_segments(path) == resolved


@pytest.mark.parametrize(
    ("given", "normalised"),
    [
        ("https://app.example/linked/a/../done?x=1", "https://app.example/linked/done?x=1"),
        ("HTTPS://App.Example:443/linked/%7Ebob/./x", "https://app.example/linked/~bob/x"),
        ("https://app.example/linked/%2e%2E/admin", "https://app.example/admin"),
        ("https://app.example/linked/.%2e/admin", "https://app.example/admin"),
        ("http://app.example:80", "http://app.example/"),
        ("https://app.example:8443/a%2fb?q=%2F..#/../x", None),  # encoded slash in the path
        ("https://app.example/a?q=%2F..#/../x", "https://app.example/a?q=%2F..#/../x"),
        ("https://app.example/%c3%bc", "https://app.example/%C3%BC"),
    ],
)
def test_normalisation(given: str, normalised: str | None) -> None:
    assert normalise(given) == normalised


@pytest.mark.parametrize(
    "return_to",
    [
        # The shapes: each leaves /linked/ once normalised, or cannot be read safely.
        "https://app.example/linked/../admin",
        "https://app.example/linked/%2e%2e/admin",
        "https://app.example/linked/%2E%2E/admin",
        "https://app.example/linked/.%2e/admin",
        "https://app.example/linked/%2e./admin",
        "https://app.example/linked/\t../admin",
        "https://app.example/linked/\n../admin",
        " https://app.example/linked/",
        "https://app.example/linked/ ",
        "https://app.example/linked/..\\admin",
        "https://app.example/linked/..%5cadmin",
        "https://app.example/linked/..%2fadmin",
        "https://app.example/linked/%252e%252e/admin",
        "https://app.example/linked/..;/admin",
        "https://app.example/linked/%00",
        "https://app.example/linked/\u00fc",
        "https://app.example/linked/%zz",
        # Open-redirect classics.
        "https://app.example.evil/linked/",
        "https://app.example/other",
        "https://app.example/linkedin",
        "http://app.example/linked/",
        "https://app.example@evil.example/linked/",
        "https://user:pw@app.example/linked/",
        "//evil.example/linked/",
        "/linked/",
        "javascript:alert(1)",
        "https:/app.example/linked/",
        "https://app.example:444/linked/",
        "https://app.example:x/linked/",
        "https://other.example:8443/exactly",
        "",
        "https://app.example/linked/" + "a" * 2048,
    ],
)
def test_outside_the_allowlist_or_unreadable_is_refused(return_to: str) -> None:
    assert approved_return_to(return_to, ALLOWLIST) is None


@pytest.mark.parametrize(
    ("return_to", "approved"),
    [
        ("https://app.example/linked/done?x=1", "https://app.example/linked/done?x=1"),
        ("https://app.example/linked", "https://app.example/linked"),
        ("https://APP.example:443/linked/a/../b", "https://app.example/linked/b"),
        ("https://other.example:8443/exact/x", "https://other.example:8443/exact/x"),
    ],
)
def test_the_approved_url_is_the_normalised_one(return_to: str, approved: str) -> None:
    assert approved_return_to(return_to, ALLOWLIST) == approved
