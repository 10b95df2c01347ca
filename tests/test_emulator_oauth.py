"""The emulator's authorization endpoint and consent page, over real HTTP (facts §1.2)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URIS, ClientConfig
from emulator.faults import FaultRule
from tests.conftest import MakeEmulator
from tests.harness import CALENDAR, CALENDAR_EVENTS, Emulator

REDIRECT = DEMO_REDIRECT_URIS[0]
READONLY = "https://www.googleapis.com/auth/calendar.readonly"
EMAIL = "https://www.googleapis.com/auth/userinfo.email"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def auto(make_emulator: MakeEmulator) -> Emulator:
    """An emulator that approves at once as login_hint."""
    return await make_emulator(auto_approve=True)


async def authorize(
    http: aiohttp.ClientSession, emu: Emulator, **params: str | None
) -> aiohttp.ClientResponse:
    query = {
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": CALENDAR_EVENTS,
        "state": "st-1",
        **params,
    }
    sent = {k: v for k, v in query.items() if v is not None}
    return await http.get(f"{emu.url}/o/oauth2/v2/auth", params=sent, allow_redirects=False)


def redirected(resp: aiohttp.ClientResponse, to: str = REDIRECT) -> dict[str, str]:
    """The query parameters of a 302 to ``to``."""
    assert resp.status == 302, resp.status
    location = resp.headers["Location"]
    assert location.startswith(to + ("&" if "?" in to else "?")), location
    return dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))


async def consent_form(
    http: aiohttp.ClientSession, emu: Emulator, **params: str | None
) -> tuple[str, str]:
    """Open the consent page: (its HTML, the pending request id)."""
    resp = await authorize(http, emu, **params)
    assert resp.status == 200
    page = await resp.text()
    found = re.search(r'name="request_id" value="([^"]+)"', page)
    assert found is not None
    return page, found.group(1)


async def answer(
    http: aiohttp.ClientSession, emu: Emulator, fields: list[tuple[str, str]]
) -> aiohttp.ClientResponse:
    return await http.post(
        f"{emu.url}/o/oauth2/v2/auth/consent", data=fields, allow_redirects=False
    )


async def exchange(
    http: aiohttp.ClientSession, emu: Emulator, code: str, **fields: str
) -> aiohttp.ClientResponse:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        **fields,
    }
    return await http.post(f"{emu.url}/token", data=form)


# The consent page --------------------------------------------------------------------------


async def test_consent_page_lists_scopes_and_accounts_safely(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    emulator.store.account("bob@example.com")
    resp = await authorize(
        http, emulator, scope=f"{CALENDAR_EVENTS} openid email", login_hint="<b>x@y.z</b>"
    )
    page = await resp.text()
    assert resp.status == 200
    assert '<html lang="en">' in page
    assert "<title>" in page
    assert "View and edit events on all your calendars" in page
    assert CALENDAR_EVENTS in page
    assert EMAIL in page  # "email" is granted as the userinfo scope
    assert 'value="bob@example.com"' in page
    assert "&lt;b&gt;x@y.z&lt;/b&gt;" in page
    assert "<b>x@y.z" not in page
    assert 'for="email"' in page
    # Enter in the email field submits with the first button, which must not be Deny.
    assert page.index('value="approve"') < page.index('value="deny"')
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    policy = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy  # falls back to default-src 'none'
    assert "form-action 'self' http://127.0.0.1:8080" in policy


async def test_approving_the_form_redirects_with_a_code(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    _, request_id = await consent_form(http, emulator, state="a b&c=d/é")
    resp = await answer(
        http,
        emulator,
        [
            ("request_id", request_id),
            ("account", ""),
            ("email", "New.Person@example.com"),
            ("scope", CALENDAR_EVENTS),
            ("action", "approve"),
        ],
    )
    params = redirected(resp)
    assert params["state"] == "a b&c=d/é"
    assert params["scope"] == CALENDAR_EVENTS
    assert params["authuser"] == "0"
    assert params["prompt"] == "consent"
    assert params["iss"] == emulator.url
    assert params["code"].startswith("4/0A")
    assert "new.person@example.com" in emulator.store.accounts
    assert emulator.store.grants[(DEMO_CLIENT_ID, "new.person@example.com")].scopes == {
        CALENDAR_EVENTS
    }


async def test_a_typed_email_wins_over_the_preselected_account(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    emulator.store.account("first@example.com")
    page, request_id = await consent_form(http, emulator)
    assert 'value="first@example.com" checked' in page
    fields = [
        ("request_id", request_id),
        ("account", "first@example.com"),
        ("email", "typed@example.com"),
        ("scope", CALENDAR_EVENTS),
        ("action", "approve"),
    ]
    redirected(await answer(http, emulator, fields))
    assert set(emulator.store.grants) == {(DEMO_CLIENT_ID, "typed@example.com")}


async def test_denying_redirects_access_denied_with_state(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    _, request_id = await consent_form(http, emulator)
    resp = await answer(http, emulator, [("request_id", request_id), ("action", "deny")])
    params = redirected(resp)
    assert params["error"] == "access_denied"
    assert params["state"] == "st-1"
    assert "code" not in params
    assert not emulator.store.grants


async def test_a_consent_request_is_answered_once(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    _, request_id = await consent_form(http, emulator)
    fields = [("request_id", request_id), ("account", "a@example.com"), ("action", "approve")]
    first = await answer(http, emulator, fields)
    second = await answer(http, emulator, fields)
    assert first.status == 302
    assert second.status == 400
    assert "expired or was already answered" in await second.text()


async def test_a_consent_page_expires(http: aiohttp.ClientSession, emulator: Emulator) -> None:
    _, request_id = await consent_form(http, emulator)
    emulator.store.clock.advance(3601)
    resp = await answer(
        http,
        emulator,
        [("request_id", request_id), ("email", "a@example.com"), ("action", "approve")],
    )
    assert resp.status == 400


async def test_approving_without_an_account_shows_the_page_again(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    _, request_id = await consent_form(http, emulator)
    refused = await answer(
        http,
        emulator,
        [("request_id", request_id), ("email", "not an email"), ("action", "approve")],
    )
    assert refused.status == 400
    assert 'role="alert"' in await refused.text()
    retried = await answer(
        http,
        emulator,
        [
            ("request_id", request_id),
            ("email", "a@example.com"),
            ("scope", CALENDAR_EVENTS),
            ("action", "approve"),
        ],
    )
    assert "code" in redirected(retried)


async def test_granular_consent_keeps_only_ticked_scopes(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    scope = f"{CALENDAR_EVENTS} {READONLY} openid email"
    _, request_id = await consent_form(http, emulator, scope=scope)
    # READONLY unticked; the identity scopes are disabled boxes, so never submitted.
    resp = await answer(
        http,
        emulator,
        [
            ("request_id", request_id),
            ("account", "a@example.com"),
            ("scope", CALENDAR_EVENTS),
            ("action", "approve"),
        ],
    )
    params = redirected(resp)
    assert set(params["scope"].split()) == {CALENDAR_EVENTS, "openid", EMAIL}
    token = await (await exchange(http, emulator, params["code"])).json()
    assert set(token["scope"].split()) == {CALENDAR_EVENTS, "openid", EMAIL}
    assert emulator.store.access_tokens[token["access_token"]].scopes == {
        CALENDAR_EVENTS,
        "openid",
        EMAIL,
    }


async def test_unticking_everything_is_a_refusal(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    _, request_id = await consent_form(http, emulator)
    resp = await answer(
        http,
        emulator,
        [("request_id", request_id), ("account", "a@example.com"), ("action", "approve")],
    )
    assert redirected(resp)["error"] == "access_denied"


# Request validation -------------------------------------------------------------------------


async def test_unknown_client_gets_an_error_page_not_a_redirect(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    resp = await authorize(http, emulator, client_id="nobody.apps.googleusercontent.com")
    page = await resp.text()
    assert resp.status == 400
    assert "Location" not in resp.headers
    assert "Error 400: invalid_client" in page
    assert "The OAuth client was not found." in page


@pytest.mark.parametrize(
    "redirect_uri",
    [REDIRECT + "/", REDIRECT.upper(), "http://evil.example/cb", REDIRECT + "?x=1"],
)
async def test_redirect_uri_must_match_exactly(
    http: aiohttp.ClientSession, emulator: Emulator, redirect_uri: str
) -> None:
    resp = await authorize(http, emulator, redirect_uri=redirect_uri)
    assert resp.status == 400
    assert "Location" not in resp.headers
    assert "redirect_uri_mismatch" in await resp.text()


async def test_other_response_types_redirect_unsupported(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    params = redirected(await authorize(http, emulator, response_type="token"))
    assert params["error"] == "unsupported_response_type"
    assert params["state"] == "st-1"


@pytest.mark.parametrize(
    "params",
    [
        {"scope": None},
        {"prompt": "none consent"},
        {"prompt": "sometimes"},
        {"access_type": "forever"},
        {"code_challenge": "x" * 43, "code_challenge_method": "S512"},
        {"code_challenge": "too-short"},
    ],
)
async def test_malformed_requests_show_invalid_request(
    http: aiohttp.ClientSession, emulator: Emulator, params: dict[str, str | None]
) -> None:
    resp = await authorize(http, emulator, **params)
    assert resp.status == 400
    assert "invalid_request" in await resp.text()


async def test_malformed_requests_can_redirect_as_rfc_6749(
    http: aiohttp.ClientSession, make_emulator: MakeEmulator
) -> None:
    emu = await make_emulator(redirect_invalid_request=True)
    params = redirected(await authorize(http, emu, scope=None))
    assert params["error"] == "invalid_request"
    assert params["state"] == "st-1"


async def test_redirect_keeps_the_registered_query(
    http: aiohttp.ClientSession, make_emulator: MakeEmulator
) -> None:
    target = "http://127.0.0.1:9/cb?tenant=a%20b"
    client = ClientConfig("other.apps.googleusercontent.com", "s3cret", (target,))
    emu = await make_emulator(clients=(client,), auto_approve=True, redirect_includes_iss=False)
    resp = await authorize(
        http, emu, client_id=client.client_id, redirect_uri=target, login_hint="a@example.com"
    )
    params = redirected(resp, to=target)
    assert params["tenant"] == "a b"
    assert "code" in params
    assert "iss" not in params


async def test_auto_approve_needs_login_hint(http: aiohttp.ClientSession, auto: Emulator) -> None:
    resp = await authorize(http, auto)
    assert resp.status == 400
    assert "login_hint" in await resp.text()


async def test_auto_approve_accepts_a_sub_as_login_hint(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    account = auto.store.account("subby@example.com")
    redirected(await authorize(http, auto, login_hint=account.sub))
    assert (DEMO_CLIENT_ID, "subby@example.com") in auto.store.grants


# prompt=none and incremental authorization ---------------------------------------------------


async def test_prompt_none_without_consent_is_consent_required(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    auto.store.account("a@example.com")
    params = redirected(await authorize(http, auto, prompt="none", login_hint="a@example.com"))
    assert params["error"] == "consent_required"
    assert params["state"] == "st-1"


async def test_prompt_none_error_is_configurable(
    http: aiohttp.ClientSession, make_emulator: MakeEmulator
) -> None:
    emu = await make_emulator(prompt_none_error="interaction_required")
    emu.store.account("a@example.com")
    params = redirected(await authorize(http, emu, prompt="none", login_hint="a@example.com"))
    assert params["error"] == "interaction_required"


async def test_prompt_none_without_a_hint_is_login_required(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    params = redirected(await authorize(http, auto, prompt="none"))
    assert params["error"] == "login_required"


async def test_prompt_none_after_consent_answers_silently(
    http: aiohttp.ClientSession, emulator: Emulator
) -> None:
    emulator.grant("a@example.com", scopes=(CALENDAR_EVENTS,))
    params = redirected(await authorize(http, emulator, prompt="none", login_hint="a@example.com"))
    assert params["prompt"] == "none"
    assert params["scope"] == CALENDAR_EVENTS
    assert "code" in params


async def test_include_granted_scopes_widens_the_new_token(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    auto.grant("a@example.com", scopes=(CALENDAR,))
    hint = "a@example.com"
    narrow = redirected(await authorize(http, auto, login_hint=hint, scope=READONLY))
    wide = redirected(
        await authorize(http, auto, login_hint=hint, scope=READONLY, include_granted_scopes="true")
    )
    assert narrow["scope"] == READONLY
    assert set(wide["scope"].split()) == {CALENDAR, READONLY}
    token = await (await exchange(http, auto, wide["code"])).json()
    assert set(token["scope"].split()) == {CALENDAR, READONLY}
    assert auto.store.grants[(DEMO_CLIENT_ID, hint)].scopes == {CALENDAR, READONLY}


async def test_fault_injection_reaches_the_oauth_routes_by_name(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    auto.faults.add(
        FaultRule(endpoint="oauth.authorize", error_rate=1.0, error_status=503, count=1)
    )
    failed = await authorize(http, auto, login_hint="a@example.com")
    assert failed.status == 503
    assert (await failed.json())["error"] == "temporarily_unavailable"
    assert (await authorize(http, auto, login_hint="a@example.com")).status == 302
