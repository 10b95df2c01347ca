"""Account linking end to end: a calling service asks for the consent URL, the user consents
at the emulator (as at Google), the callback stores encrypted tokens and announces the link.

Real HTTP everywhere (auth_web and the emulator on 127.0.0.1), real Redis.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import json
import logging
import re
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from yarl import URL

from emulator.faults import FaultRule
from gcal.crypto import Cipher, generate_key
from gcal.errors import AuthRequired
from gcal.tokens import TokenStore
from jobs.registry import default_scopes
from tests.conftest import MakeAuthWeb
from tests.harness import Emulator
from tests.services import AuthWeb, bound_socket


async def consent_url(
    http: aiohttp.ClientSession, auth_web: AuthWeb, user_id: str = "user-1", **query: str
) -> str:
    resp = await http.get(
        f"{auth_web.url}/auth/url/{user_id}", params=query, headers=auth_web.auth_header
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["expires_at"].endswith("Z")
    return str(body["url"])


def assert_styled(resp: aiohttp.ClientResponse, page: str) -> None:
    """The page is the product's card, its stylesheet allowed by the page's own CSP hash."""
    [style] = re.findall(r"<style>(.*?)</style>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    policy = resp.headers["Content-Security-Policy"]
    assert f"style-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert '<main class="' in page


def browser() -> aiohttp.ClientSession:
    """An HTTP client that keeps cookies as a browser does (for 127.0.0.1 too)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def start(http: aiohttp.ClientSession, url: str) -> str:
    """Open the link a calling service got (auth_web's /auth/start); Google's consent URL."""
    resp = await http.get(url, allow_redirects=False)
    assert resp.status == 302, await resp.text()
    return resp.headers["Location"]


async def approve(http: aiohttp.ClientSession, url: str) -> str:
    """Open the link, then the consent URL at the (auto-approving) emulator; the callback URL
    it redirects to."""
    resp = await http.get(await start(http, url), allow_redirects=False)
    assert resp.status == 302, await resp.text()
    return resp.headers["Location"]


async def link(
    http: aiohttp.ClientSession,
    auth_web: AuthWeb,
    user_id: str = "user-1",
    email: str = "alice@example.com",
) -> str:
    callback = await approve(http, await consent_url(http, auth_web, user_id, login_hint=email))
    resp = await http.get(callback, allow_redirects=False)
    assert resp.status == 200, await resp.text()
    return callback


async def next_message(pubsub: PubSub) -> dict[str, Any]:
    """The next published message (subscription confirmations skipped), or a timeout."""

    async def first() -> dict[str, Any]:
        async for message in pubsub.listen():
            if message["type"] == "message":
                return dict(message)
        raise AssertionError("subscription closed")

    return await asyncio.wait_for(first(), 5)


@pytest.fixture
async def auth_web(emulator: Emulator, make_auth_web: MakeAuthWeb) -> AuthWeb:
    emulator.configure(auto_approve=True)
    return await make_auth_web()


async def test_consent_url_asks_for_offline_forced_consent_with_pkce(auth_web: AuthWeb) -> None:
    async with browser() as http:
        link = await consent_url(http, auth_web, login_hint="alice@example.com")
        url = await start(http, link)
    assert link.startswith(f"{auth_web.url}/auth/start?state=")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert url.startswith(str(auth_web.settings.authorization_endpoint))
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["include_granted_scopes"] == "true"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    # GCAL_SCOPES unset: the jobs' own scopes, plus openid (it reads no data, and identifies
    # the account).
    assert query["scope"].split() == [*default_scopes(), "openid"]
    assert query["login_hint"] == "alice@example.com"
    assert len(query["state"]) >= 43  # 256 bits, base64url


async def test_full_flow_stores_encrypted_tokens_and_announces_the_link(
    auth_web: AuthWeb, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with redis.pubsub() as pubsub, browser() as http:
        await pubsub.subscribe(auth_web.services.keys.notifications)
        callback = await approve(
            http, await consent_url(http, auth_web, login_hint="alice@example.com")
        )
        [binding] = [c.value for c in http.cookie_jar if c.key.startswith("gcal_consent_")]
        resp = await http.get(callback, allow_redirects=False)
        page = await resp.text()
        message = await next_message(pubsub)
    assert resp.status == 200
    assert "Google Calendar linked" in page
    assert_styled(resp, page)
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in resp.headers["Content-Security-Policy"]

    tokens = await auth_web.services.tokens.get("user-1")
    assert tokens is not None
    assert set(default_scopes()) <= tokens.scopes
    raw = await redis.get(auth_web.services.keys.tokens("user-1"))
    assert raw is not None
    assert tokens.access_token.encode() not in raw
    assert tokens.refresh_token.encode() not in raw

    announced = json.loads(message["data"])
    assert announced["type"] == "auth_linked"
    assert announced["user_id"] == "user-1"
    assert set(default_scopes()) <= set(announced["scopes"])
    stream = await redis.xrange(auth_web.services.keys.notification_stream)
    assert [json.loads(fields[b"json"])["type"] for _, fields in stream] == ["auth_linked"]

    query = parse_qs(urlsplit(callback).query)
    code, state = query["code"][0], query["state"][0]
    for secret in (code, state, binding, tokens.access_token, tokens.refresh_token):
        assert secret not in caplog.text
        assert secret not in page
        assert secret not in message["data"].decode()


async def test_auth_url_needs_a_configured_bearer_key(auth_web: AuthWeb) -> None:
    url = f"{auth_web.url}/auth/url/user-1"
    async with browser() as http:
        missing = await http.get(url)
        wrong = await http.get(url, headers={"Authorization": "Bearer nope"})
        basic = await http.get(url, headers={"Authorization": "Basic old-key"})
        rotated_out_but_still_listed = await http.get(
            url, headers={"Authorization": "Bearer old-key"}
        )
    assert (missing.status, wrong.status, basic.status) == (401, 401, 401)
    assert rotated_out_but_still_listed.status == 200


@pytest.mark.parametrize("user_id", ["a%3Ab", "x" * 129, "%C3%BC", "a%20b"])
async def test_auth_url_refuses_bad_user_ids(auth_web: AuthWeb, user_id: str) -> None:
    async with browser() as http:
        resp = await http.get(f"{auth_web.url}/auth/url/{user_id}", headers=auth_web.auth_header)
        body = await resp.json()
    assert resp.status == 400
    assert body["error"]["code"] == "invalid_request"
    assert "user_id must be" in body["error"]["message"]


@pytest.mark.parametrize(
    "return_to",
    [
        "https://app.example.evil/linked/",
        "https://app.example/other",
        "http://app.example/linked/",
        "https://app.example@evil.example/linked/",
        "//evil.example/linked/",
        "javascript:alert(1)",
        # Dot segments, however spelled, that climb out of the allowed path.
        "https://app.example/linked/../admin",
        "https://app.example/linked/%2e%2e/admin",
        "https://app.example/linked/.%2e/admin",
        "https://app.example/linked/\t../admin",
        "https://app.example/linked/..%2fadmin",
    ],
)
async def test_return_to_outside_the_allowlist_is_refused(
    auth_web: AuthWeb, return_to: str
) -> None:
    async with browser() as http:
        resp = await http.get(
            f"{auth_web.url}/auth/url/user-1",
            params={"return_to": return_to},
            headers=auth_web.auth_header,
        )
    assert resp.status == 400


@pytest.mark.parametrize(
    ("return_to", "location"),
    [
        ("https://app.example/linked/done?x=1", "https://app.example/linked/done?x=1"),
        # Sent where the allowlist check looked: the normalised URL, not the one given.
        (
            "HTTPS://App.Example:443/linked/a/%2e%2e/%7Ebob/./done",
            "https://app.example/linked/~bob/done",
        ),
    ],
)
async def test_callback_redirects_to_an_allowed_return_to(
    auth_web: AuthWeb, return_to: str, location: str
) -> None:
    async with browser() as http:
        url = await consent_url(http, auth_web, return_to=return_to, login_hint="alice@example.com")
        resp = await http.get(await approve(http, url), allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == location
    assert await auth_web.services.tokens.get("user-1") is not None


async def test_state_is_single_use_and_expires(auth_web: AuthWeb, redis: Redis) -> None:
    async with browser() as http:
        url = await consent_url(http, auth_web, login_hint="alice@example.com")
        state_keys = [
            k
            async for k in redis.scan_iter(match=f"{auth_web.settings.redis_prefix}:oauth:state:*")
        ]
        assert len(state_keys) == 1
        ttl = await redis.ttl(state_keys[0])
        assert 0 < ttl <= auth_web.settings.state_ttl
        callback = await approve(http, url)
        first = await http.get(callback, allow_redirects=False)
        await redis.delete(auth_web.services.keys.tokens("user-1"))
        replay = await http.get(callback, allow_redirects=False)
        replay_page = await replay.text()
    assert first.status == 200
    assert replay.status == 400
    assert "expired or was already used" in replay_page
    assert_styled(replay, replay_page)
    assert await auth_web.services.tokens.get("user-1") is None


@pytest.mark.parametrize(
    "query", ["", "?state=", "?state=forged-state&code=4/0abc", "?code=4/0abc"]
)
async def test_callback_without_a_known_state_stores_nothing(auth_web: AuthWeb, query: str) -> None:
    async with browser() as http:
        resp = await http.get(f"{auth_web.url}/auth/callback{query}")
        page = await resp.text()
    assert resp.status == 400
    assert "<title>" in page
    assert_styled(resp, page)
    assert await auth_web.services.tokens.get("user-1") is None


async def test_token_endpoint_outage_shows_a_retry_page_and_keeps_nothing(
    auth_web: AuthWeb, emulator: Emulator
) -> None:
    emulator.faults.add(FaultRule(endpoint="oauth.token", error_rate=1.0, error_status=503))
    async with browser() as http:
        callback = await approve(
            http, await consent_url(http, auth_web, login_hint="alice@example.com")
        )
        resp = await http.get(callback, allow_redirects=False)
        page = await resp.text()
    assert resp.status == 502
    assert "try again" in page
    assert_styled(resp, page)
    assert emulator.faults.injected == 3  # bounded in-call retries, then give up
    assert await auth_web.services.tokens.get("user-1") is None


async def test_one_transient_token_failure_is_retried_within_the_call(
    auth_web: AuthWeb, emulator: Emulator
) -> None:
    emulator.faults.add(
        FaultRule(endpoint="oauth.token", error_rate=1.0, error_status=500, count=1)
    )
    async with browser() as http:
        await link(http, auth_web)
    assert await auth_web.services.tokens.get("user-1") is not None


async def test_health_and_readiness(auth_web: AuthWeb) -> None:
    async with browser() as http:
        health = await http.get(f"{auth_web.url}/healthz")
        ready = await http.get(f"{auth_web.url}/readyz")
        await link(http, auth_web)
        metrics = await (await http.get(f"{auth_web.url}/metrics")).text()
    assert health.status == 200
    assert (await ready.json()) == {"ok": True, "redis": "ok"}
    assert 'gcal_auth_callbacks_total{outcome="linked"} 1.0' in metrics


async def consent_form(http: aiohttp.ClientSession, url: str) -> tuple[str, str]:
    """Open the emulator's consent page: (form action URL, request_id)."""
    resp = await http.get(url)
    page = await resp.text()
    assert resp.status == 200, page
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    request_id = re.search(r'name="request_id" value="([^"]+)"', page)
    assert action is not None
    assert request_id is not None
    return urljoin(str(resp.url), html.unescape(action.group(1))), request_id.group(1)


async def test_denied_consent_shows_what_happened_and_keeps_nothing(
    emulator: Emulator, make_auth_web: MakeAuthWeb
) -> None:
    auth_web = await make_auth_web()
    async with browser() as http:
        action, request_id = await consent_form(http, await consent_url(http, auth_web))
        denied = await http.post(
            action, data={"request_id": request_id, "action": "deny"}, allow_redirects=False
        )
        assert "error=access_denied" in denied.headers["Location"]
        resp = await http.get(denied.headers["Location"], allow_redirects=False)
        page = await resp.text()
    assert resp.status == 403
    assert "chose not to give access" in page
    assert_styled(resp, page)
    assert await auth_web.services.tokens.get("user-1") is None


async def test_missing_required_scope_is_its_own_outcome(
    emulator: Emulator, make_auth_web: MakeAuthWeb, redis: Redis
) -> None:
    # The jobs' scopes plus the email (asked by the service); the user unticks every calendar
    # scope (granular consent), and only the sign-in scopes remain.
    auth_web = await make_auth_web()
    async with browser() as http:
        action, request_id = await consent_form(
            http, await consent_url(http, auth_web, scope="email")
        )
        approved = await http.post(
            action,
            data={"request_id": request_id, "action": "approve", "email": "bob@example.com"},
            allow_redirects=False,
        )
        resp = await http.get(approved.headers["Location"], allow_redirects=False)
        page = await resp.text()
    assert resp.status == 403
    assert "permission missing" in page
    assert_styled(resp, page)
    assert await auth_web.services.tokens.get("user-1") is None
    stream = await redis.xrange(auth_web.services.keys.notification_stream)
    announced = json.loads(stream[-1][1][b"json"])
    assert announced["type"] == "auth_scope_missing"
    assert announced["missing_scopes"] == sorted(default_scopes())
    assert announced["email"] == "bob@example.com"
    # The partial grant was handed back to Google.
    assert not emulator.store.grants


async def test_email_is_recorded_when_google_sends_it(
    emulator: Emulator, make_auth_web: MakeAuthWeb
) -> None:
    emulator.configure(auto_approve=True)
    auth_web = await make_auth_web(scopes=(*default_scopes(), "email"))
    async with browser() as http:
        await link(http, auth_web)
    tokens = await auth_web.services.tokens.get("user-1")
    assert tokens is not None
    assert tokens.email == "alice@example.com"


@pytest.mark.parametrize(
    ("error", "shown"),
    [("server_error", "server_error"), ("Call 555-0100 to fix your account", "unknown_error")],
)
async def test_other_oauth_errors_say_what_happened_and_keep_nothing(
    auth_web: AuthWeb, error: str, shown: str
) -> None:
    async with browser() as http:
        url = await consent_url(http, auth_web)
        state = parse_qs(urlsplit(await start(http, url)).query)["state"][0]
        resp = await http.get(
            f"{auth_web.url}/auth/callback", params={"state": state, "error": error}
        )
        page = await resp.text()
    assert resp.status == 400
    assert f"Google reported an error: {shown}." in page
    assert_styled(resp, page)
    assert "555-0100" not in page
    assert await auth_web.services.tokens.get("user-1") is None


async def test_an_unexpected_failure_is_a_friendly_page_never_a_stock_500(
    make_auth_web: MakeAuthWeb, caplog: pytest.LogCaptureFixture
) -> None:
    with bound_socket() as down:  # bound, never listening: Redis refuses every connection
        auth_web = await make_auth_web(redis_url=f"redis://127.0.0.1:{down.getsockname()[1]}/0")
        async with aiohttp.ClientSession() as http:
            page_resp = await http.get(
                f"{auth_web.url}/auth/callback", params={"state": "s" * 43, "code": "4/0secret"}
            )
            page = await page_resp.text()
            api = await http.get(f"{auth_web.url}/auth/url/user-1", headers=auth_web.auth_header)
            body = await api.json()
    assert page_resp.status == 500
    assert page_resp.content_type == "text/html"
    assert_styled(page_resp, page)
    assert "<h1>Something went wrong</h1>" in page
    assert "Internal Server Error" not in page
    assert api.status == 500
    assert body == {"error": {"code": "internal", "message": "an unexpected error occurred"}}
    failures = [r for r in caplog.records if r.name == "auth_web.errors"]
    assert [r.getMessage() for r in failures] == [
        "unexpected error in GET auth_callback",
        "unexpected error in GET auth_url",
    ]
    assert all(r.exc_info and "ConnectionError" in repr(r.exc_info[1]) for r in failures)
    assert "4/0secret" not in caplog.text
    assert "s" * 43 not in caplog.text


async def test_linking_again_replaces_tokens_that_no_longer_decrypt(
    auth_web: AuthWeb, redis: Redis
) -> None:
    s = auth_web.services
    async with browser() as http:
        await link(http, auth_web)
        first = await s.tokens.get("user-1")
        assert first is not None
        # Keys rotated out of order: the stored value opens with none of the service's keys.
        await TokenStore(redis, s.keys, Cipher([generate_key()])).put("user-1", first)
        with pytest.raises(AuthRequired):
            await s.accounts.access_token("user-1")
        callback = await approve(
            http, await consent_url(http, auth_web, login_hint="alice@example.com")
        )
        resp = await http.get(callback, allow_redirects=False)
        page = await resp.text()
    assert resp.status == 200, page
    assert "Google Calendar linked" in page
    relinked = await s.tokens.get("user-1")
    assert relinked is not None
    assert relinked.refresh_token != first.refresh_token
    assert await s.accounts.access_token("user-1") == relinked.access_token
    assert await s.accounts.reconsent_reason("user-1") is None


async def test_a_relink_while_a_worker_refreshes_the_old_grant_is_kept(
    auth_web: AuthWeb, emulator: Emulator, redis: Redis
) -> None:
    s = auth_web.services
    emulator.configure(access_token_ttl=60)  # within the refresh margin: the next use refreshes
    async with browser() as http:
        await link(http, auth_web)
        old = await s.tokens.get("user-1")
        assert old is not None
        hold = emulator.faults.hold("oauth.token")  # the worker's refresh waits at "Google"
        refreshing = asyncio.ensure_future(s.accounts.access_token("user-1"))
        await asyncio.wait_for(hold.reached(), 5)
        emulator.configure(access_token_ttl=3599)
        await link(http, auth_web)  # the person links again meanwhile
        hold.release()
        token = await refreshing
    relinked = await s.tokens.get("user-1")
    assert relinked is not None
    assert relinked.refresh_token != old.refresh_token
    assert token == relinked.access_token
    assert emulator.store.valid_access_token(token) is not None
    stream = await redis.xrange(s.keys.notification_stream)
    assert [json.loads(f[b"json"])["type"] for _, f in stream] == ["auth_linked", "auth_linked"]


async def test_linking_another_google_account_revokes_the_old_grant(
    auth_web: AuthWeb, emulator: Emulator
) -> None:
    async with browser() as http:
        await link(http, auth_web, email="alice@example.com")
        alice = await auth_web.services.tokens.get("user-1")
        await link(http, auth_web, email="bob@example.com")
    bob = await auth_web.services.tokens.get("user-1")
    assert alice is not None
    assert bob is not None
    assert (alice.sub, bob.sub) == (
        emulator.store.accounts["alice@example.com"].sub,
        emulator.store.accounts["bob@example.com"].sub,
    )
    # Alice's grant is gone at Google; Bob's tokens work.
    assert alice.refresh_token not in emulator.store.refresh_tokens
    assert emulator.store.valid_access_token(alice.access_token) is None
    assert [email for _, email in emulator.store.grants] == ["bob@example.com"]
    assert await auth_web.services.accounts.access_token("user-1") == bob.access_token
    assert emulator.store.valid_access_token(bob.access_token) is not None


async def test_linking_the_same_google_account_again_revokes_nothing(
    auth_web: AuthWeb, emulator: Emulator
) -> None:
    async with browser() as http:
        await link(http, auth_web, email="alice@example.com")
        await link(http, auth_web, email="alice@example.com")
    tokens = await auth_web.services.tokens.get("user-1")
    assert tokens is not None
    # Google keeps one grant per client and account: revoking the old tokens would have
    # revoked these too.
    assert emulator.store.requests["oauth.revoke"] == 0
    assert tokens.refresh_token in emulator.store.refresh_tokens
    assert emulator.store.valid_access_token(tokens.access_token) is not None


# Browser binding ----------------------------------------------------------------------------


def set_cookies(resp: aiohttp.ClientResponse) -> list[str]:
    return [h for h in resp.headers.getall("Set-Cookie", []) if h.startswith("gcal_consent_")]


async def test_the_link_binds_the_consent_to_the_browser_with_a_narrow_cookie(
    auth_web: AuthWeb,
) -> None:
    async with browser() as http:
        url = await consent_url(http, auth_web, login_hint="alice@example.com")
        resp = await http.get(url, allow_redirects=False)
    assert resp.status == 302
    assert resp.headers["Location"].startswith(str(auth_web.settings.authorization_endpoint))
    assert resp.headers["Cache-Control"] == "no-store"
    [cookie] = set_cookies(resp)
    attributes = {a.strip().split("=")[0].lower(): a.strip() for a in cookie.split(";")[1:]}
    assert attributes["path"] == "Path=/auth/callback"
    assert attributes["samesite"] == "SameSite=Lax"
    assert "httponly" in attributes
    assert "secure" not in attributes  # the redirect URI is http here
    assert 0 < int(attributes["max-age"].split("=")[1]) <= auth_web.settings.state_ttl
    state = parse_qs(urlsplit(url).query)["state"][0]
    assert state not in cookie


async def test_the_binding_cookie_is_secure_when_the_redirect_uri_is_https(
    make_auth_web: MakeAuthWeb,
) -> None:
    auth_web = await make_auth_web(redirect_uri="https://auth.example/gcal/auth/callback")
    async with browser() as http:
        url = await consent_url(http, auth_web)
        assert url.startswith("https://auth.example/gcal/auth/start?state=")
        resp = await http.get(
            f"{auth_web.url}/auth/start?{urlsplit(url).query}", allow_redirects=False
        )
    [cookie] = set_cookies(resp)
    assert "; Secure" in cookie
    assert "Path=/gcal/auth/callback" in cookie


async def test_a_consent_finished_in_another_browser_links_nothing(
    auth_web: AuthWeb, redis: Redis
) -> None:
    # Someone opens a link meant for user-1, then lures another browser through Google.
    async with browser() as starter, browser() as other:
        google = await start(starter, await consent_url(starter, auth_web))
        approved = await other.get(
            google + "&login_hint=mallory%40example.com", allow_redirects=False
        )
        resp = await other.get(approved.headers["Location"], allow_redirects=False)
        page = await resp.text()
        metrics = await (await other.get(f"{auth_web.url}/metrics")).text()
    assert resp.status == 400
    assert "Sign-in started in another browser" in page
    assert_styled(resp, page)
    assert await auth_web.services.tokens.get("user-1") is None
    assert await redis.xlen(auth_web.services.keys.notification_stream) == 0
    assert 'gcal_auth_callbacks_total{outcome="other_browser"} 1.0' in metrics


async def test_a_forged_binding_cookie_links_nothing(auth_web: AuthWeb) -> None:
    async with browser() as http:
        callback = await approve(http, await consent_url(http, auth_web, login_hint="a@b.example"))
        [name] = [c.key for c in http.cookie_jar if c.key.startswith("gcal_consent_")]
        forged = SimpleCookie()
        forged[name] = "forged-secret"
        forged[name]["path"] = "/auth/callback"
        http.cookie_jar.update_cookies(forged, URL(auth_web.url))
        assert [c.value for c in http.cookie_jar if c.key == name] == ["forged-secret"]
        resp = await http.get(callback, allow_redirects=False)
        page = await resp.text()
    assert resp.status == 400
    assert "another browser" in page
    assert await auth_web.services.tokens.get("user-1") is None


async def test_a_link_opens_in_one_browser_only(auth_web: AuthWeb) -> None:
    async with browser() as first, browser() as second:
        url = await consent_url(first, auth_web, login_hint="alice@example.com")
        callback = await approve(first, url)
        again = await second.get(url, allow_redirects=False)
        again_page = await again.text()
        resp = await first.get(callback, allow_redirects=False)
    assert again.status == 400
    assert "expired or was already used" in again_page
    assert set_cookies(again) == []
    assert resp.status == 200  # the browser that opened it first finishes normally
    assert await auth_web.services.tokens.get("user-1") is not None


async def test_the_callback_clears_the_binding_cookie(auth_web: AuthWeb) -> None:
    async with browser() as http:
        callback = await approve(http, await consent_url(http, auth_web, login_hint="a@b.example"))
        assert [c.key for c in http.cookie_jar if c.key.startswith("gcal_consent_")]
        resp = await http.get(callback, allow_redirects=False)
        left = [c.key for c in http.cookie_jar if c.key.startswith("gcal_consent_")]
    assert resp.status == 200
    [cleared] = set_cookies(resp)
    assert "Max-Age=0" in cleared
    assert "Path=/auth/callback" in cleared
    assert left == []
