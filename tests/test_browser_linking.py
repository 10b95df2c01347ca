"""A real browser links an account: headless Chromium (Debian's ``chromium``) opens the link a
calling service got (auth_web's start, which binds the consent to this browser with a cookie
and sends it on to Google), approves on the emulator's consent page, lands on auth_web's
callback and sees the success page; the tokens are then in the store. Opening the used link
again shows the expired-link page. Both pages are styled by their one stylesheet, which the
Content-Security-Policy lets through (computed styles checked, no CSP complaint on the
console); a screenshot of each is saved in the test's temporary directory.

Driven with Playwright against the system Chromium (no browser download). CI installs
Chromium; without it this test fails rather than skips.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import ConsoleMessage, Page, async_playwright

from tests.conftest import MakeAuthWeb
from tests.harness import Emulator

# Flags for a sandbox-less, offline machine: no first-run UI, no calls to Google's services.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("the browser test needs Debian's chromium package (.ci/run installs it)")
    return path


async def styles_of(page: Page) -> dict[str, str]:
    """What the browser computed for the page's card, mark and heading."""
    main, mark, heading = page.locator("main"), page.locator(".mark"), page.get_by_role("heading")
    return {
        "body": await page.locator("body").evaluate("e => getComputedStyle(e).backgroundColor"),
        "card": await main.evaluate("e => getComputedStyle(e).backgroundColor"),
        "radius": await main.evaluate("e => getComputedStyle(e).borderRadius"),
        "mark": await mark.evaluate("e => getComputedStyle(e).backgroundColor"),
        "font": await heading.evaluate("e => getComputedStyle(e).fontWeight"),
    }


# The consent page's grey and white card (emulator/consent.py), Google blue and red marks.
CARD = {"body": "rgb(241, 243, 244)", "card": "rgb(255, 255, 255)", "radius": "8px", "font": "500"}
BLUE, RED = "rgb(26, 115, 232)", "rgb(217, 48, 37)"


async def test_a_person_links_their_calendar_in_a_browser(
    emulator: Emulator, make_auth_web: MakeAuthWeb, tmp_path: Path
) -> None:
    auth_web = await make_auth_web()
    emulator.store.account("carol@example.com")  # an existing test account to choose
    async with aiohttp.ClientSession() as http:
        resp = await http.get(f"{auth_web.url}/auth/url/user-7", headers=auth_web.auth_header)
        consent_url = (await resp.json())["url"]

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            console: list[str] = []

            def logged(message: ConsoleMessage) -> None:
                console.append(message.text)

            page.on("console", logged)
            await page.goto(consent_url)
            assert "wants to access your Google Account" in await page.content()
            [binding] = await page.context.cookies()
            assert binding["name"].startswith("gcal_consent_")
            assert (binding["path"], binding["httpOnly"], binding["sameSite"]) == (
                "/auth/callback",
                True,
                "Lax",
            )
            await page.get_by_label("carol@example.com").check()
            assert await page.get_by_label(
                "View and edit events on all your calendars"
            ).is_checked()
            await page.get_by_role("button", name="Approve").click()
            await page.wait_for_url(f"{auth_web.url}/auth/callback*", timeout=10_000)
            heading = await page.get_by_role("heading").inner_text()
            body = await page.content()
            cookies = await page.context.cookies()
            linked = await styles_of(page)
            await page.screenshot(path=tmp_path / "linked.png", full_page=True)

            await page.goto(consent_url)  # the link again: used up
            expired_heading = await page.get_by_role("heading").inner_text()
            expired = await styles_of(page)
            await page.screenshot(path=tmp_path / "expired.png", full_page=True)
        finally:
            await browser.close()

    assert heading == "Google Calendar linked"
    assert linked == {**CARD, "mark": BLUE}
    assert expired_heading == "Sign-in link expired"
    assert expired == {**CARD, "mark": RED}
    assert [text for text in console if "Content Security Policy" in text] == []
    assert (tmp_path / "linked.png").stat().st_size > 0
    assert "code=" not in body
    assert cookies == []  # the browser binding's cookie was set by the link, then cleared
    tokens = await auth_web.services.tokens.get("user-7")
    assert tokens is not None
    assert tokens.refresh_token
    assert emulator.store.valid_access_token(tokens.access_token) is not None
