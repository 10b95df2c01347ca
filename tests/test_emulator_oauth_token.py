"""The emulator's token, revoke, certs and userinfo endpoints, over real HTTP (facts §1.3-1.6)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from emulator.config import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URIS, ClientConfig
from tests.conftest import MakeEmulator
from tests.harness import CALENDAR_EVENTS, Emulator
from tests.test_emulator_oauth import EMAIL, READONLY, authorize, exchange, redirected

HINT = "alice@example.com"
VERIFIER = "v" * 20 + "-._~" + "0123456789abcdefghijklmn"  # 48 unreserved characters
# A secret that must be form-urlencoded inside HTTP Basic.
OTHER = ClientConfig("other.apps.googleusercontent.com", "other:secret +/=", DEMO_REDIRECT_URIS)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def auto(make_emulator: MakeEmulator) -> Emulator:
    """An emulator that approves at once as login_hint, with a second client registered."""
    return await make_emulator(
        auto_approve=True,
        clients=(ClientConfig(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT_URIS), OTHER),
    )


async def code_for(
    http: aiohttp.ClientSession, emu: Emulator, **params: str | None
) -> dict[str, str]:
    """Authorize (auto-approved as HINT) and return the success redirect's parameters."""
    return redirected(await authorize(http, emu, login_hint=HINT, **params))


async def tokens_for(
    http: aiohttp.ClientSession, emu: Emulator, **params: str | None
) -> dict[str, Any]:
    resp = await exchange(http, emu, (await code_for(http, emu, **params))["code"])
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def post_token(
    http: aiohttp.ClientSession, emu: Emulator, form: dict[str, str], **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    resp = await http.post(f"{emu.url}/token", data=form, **kwargs)
    return resp.status, await resp.json()


def refresh_form(refresh_token: str, **fields: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET,
        **fields,
    }


def basic(client_id: str, secret: str) -> dict[str, str]:
    """client_secret_basic: each half form-urlencoded, then base64 (RFC 6749 §2.3.1)."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def jwt_part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def b64url_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


# Code exchange --------------------------------------------------------------------------------


async def test_exchange_answers_google_token_response(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    params = await code_for(http, auto, access_type="offline")
    resp = await exchange(http, auto, params["code"])
    body = await resp.json()
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "no-store" in resp.headers["Cache-Control"]
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3599
    assert body["scope"] == CALENDAR_EVENTS
    assert body["refresh_token"].startswith("1//")
    assert "id_token" not in body
    access = auto.store.valid_access_token(body["access_token"])
    assert access is not None
    assert access.email == HINT
    assert body["refresh_token"] in auto.store.refresh_tokens
    assert auto.store.requests["oauth.token.authorization_code"] == 1


async def test_refresh_token_only_offline_and_on_first_or_forced_consent(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    online = await tokens_for(http, auto)
    assert "refresh_token" not in online
    # A grant now exists, so later offline requests are no longer the first consent.
    again = await tokens_for(http, auto, access_type="offline")
    forced = await tokens_for(http, auto, access_type="offline", prompt="consent")
    assert "refresh_token" not in again
    assert "refresh_token" in forced

    auto.store.revoke_grant(HINT)
    after_revoke = await tokens_for(http, auto, access_type="offline")
    assert "refresh_token" in after_revoke


async def test_a_first_offline_grant_yields_a_refresh_token(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    first = await tokens_for(http, auto, access_type="offline")
    assert "refresh_token" in first


async def test_codes_are_single_use_and_a_replay_revokes_their_tokens(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    code = (await code_for(http, auto, access_type="offline"))["code"]
    first = await (await exchange(http, auto, code)).json()
    replay = await exchange(http, auto, code)
    assert replay.status == 400
    assert (await replay.json())["error"] == "invalid_grant"
    assert auto.store.valid_access_token(first["access_token"]) is None
    assert first["refresh_token"] not in auto.store.refresh_tokens


async def test_replay_revocation_can_be_switched_off(
    http: aiohttp.ClientSession, make_emulator: MakeEmulator
) -> None:
    emu = await make_emulator(auto_approve=True, code_replay_revokes_tokens=False)
    code = (await code_for(http, emu))["code"]
    first = await (await exchange(http, emu, code)).json()
    assert (await exchange(http, emu, code)).status == 400
    assert emu.store.valid_access_token(first["access_token"]) is not None


async def test_codes_expire(http: aiohttp.ClientSession, auto: Emulator) -> None:
    code = (await code_for(http, auto))["code"]
    auto.store.clock.advance(auto.store.config.code_ttl + 1)
    resp = await exchange(http, auto, code)
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_grant"


async def test_a_code_is_good_until_its_ttl(http: aiohttp.ClientSession, auto: Emulator) -> None:
    code = (await code_for(http, auto))["code"]
    auto.store.clock.advance(auto.store.config.code_ttl - 5)
    assert (await exchange(http, auto, code)).status == 200


async def test_unknown_code_is_invalid_grant(http: aiohttp.ClientSession, auto: Emulator) -> None:
    resp = await exchange(http, auto, "4/0Anope")
    assert resp.status == 400
    assert await resp.json() == {
        "error": "invalid_grant",
        "error_description": "Malformed auth code.",
    }


async def test_redirect_uri_must_repeat_the_authorization_one(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    code = (await code_for(http, auto))["code"]
    other = await exchange(http, auto, code, redirect_uri=DEMO_REDIRECT_URIS[1])
    missing = await exchange(http, auto, code, redirect_uri="")
    assert other.status == 400
    assert (await other.json())["error"] == "invalid_grant"
    assert missing.status == 400
    assert (await missing.json())["error"] == "invalid_request"
    assert (await exchange(http, auto, code)).status == 200  # failures did not burn the code


async def test_a_code_belongs_to_its_client(http: aiohttp.ClientSession, auto: Emulator) -> None:
    code = (await code_for(http, auto))["code"]
    resp = await exchange(
        http, auto, code, client_id=OTHER.client_id, client_secret=OTHER.client_secret
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_grant"


async def test_pkce_s256(http: aiohttp.ClientSession, auto: Emulator) -> None:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest())
    params = {"code_challenge": challenge.rstrip(b"=").decode(), "code_challenge_method": "S256"}
    good = (await code_for(http, auto, **params))["code"]
    bad = (await code_for(http, auto, **params))["code"]
    missing = (await code_for(http, auto, **params))["code"]
    assert (await exchange(http, auto, good, code_verifier=VERIFIER)).status == 200
    wrong = await exchange(http, auto, bad, code_verifier=VERIFIER[::-1])
    assert wrong.status == 400
    assert (await wrong.json())["error_description"] == "Invalid code verifier."
    absent = await exchange(http, auto, missing)
    assert absent.status == 400
    assert (await absent.json())["error_description"] == "Missing code verifier."


async def test_pkce_defaults_to_plain(http: aiohttp.ClientSession, auto: Emulator) -> None:
    good = (await code_for(http, auto, code_challenge=VERIFIER))["code"]
    bad = (await code_for(http, auto, code_challenge=VERIFIER))["code"]
    assert (await exchange(http, auto, good, code_verifier=VERIFIER)).status == 200
    assert (await exchange(http, auto, bad, code_verifier=VERIFIER[:-1] + "x")).status == 400


# Client authentication and request shape ------------------------------------------------------


async def test_http_basic_client_authentication(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    code = (await code_for(http, auto))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": DEMO_REDIRECT_URIS[0]}
    status, body = await post_token(
        http, auto, form, headers=basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
    )
    assert status == 200
    assert "access_token" in body


async def test_http_basic_decodes_urlencoded_secrets(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    _, refresh = auto.grant(HINT, client_id=OTHER.client_id)
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    status, body = await post_token(
        http, auto, form, headers=basic(OTHER.client_id, OTHER.client_secret)
    )
    assert status == 200, body


async def test_wrong_basic_secret_is_401_invalid_client(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    resp = await http.post(
        f"{auto.url}/token",
        data={"grant_type": "refresh_token", "refresh_token": "1//x"},
        headers=basic(DEMO_CLIENT_ID, "wrong"),
    )
    assert resp.status == 401
    assert await resp.json() == {"error": "invalid_client", "error_description": "Unauthorized"}
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_wrong_post_secret_is_401_invalid_client(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    _, refresh = auto.grant(HINT)
    status, body = await post_token(http, auto, refresh_form(refresh, client_secret="nope"))
    assert status == 401
    assert body == {"error": "invalid_client", "error_description": "Unauthorized"}


async def test_unknown_client_is_401_not_found(http: aiohttp.ClientSession, auto: Emulator) -> None:
    _, refresh = auto.grant(HINT)
    status, body = await post_token(http, auto, refresh_form(refresh, client_id="ghost"))
    assert status == 401
    assert body == {
        "error": "invalid_client",
        "error_description": "The OAuth client was not found.",
    }


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}, "invalid_request"),
        (
            {
                "grant_type": "password",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
            "unsupported_grant_type",
        ),
        (
            {
                "grant_type": "authorization_code",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            },
            "invalid_request",
        ),
        ({"grant_type": "refresh_token", "refresh_token": "1//x"}, "invalid_request"),
    ],
)
async def test_malformed_token_requests_are_400(
    http: aiohttp.ClientSession, auto: Emulator, form: dict[str, str], error: str
) -> None:
    status, body = await post_token(http, auto, form)
    assert status == 400
    assert body["error"] == error


# Refresh --------------------------------------------------------------------------------------


async def test_refresh_issues_a_new_access_token_without_rotation(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    access, refresh = auto.grant(HINT, scopes=(CALENDAR_EVENTS, READONLY))
    status, body = await post_token(http, auto, refresh_form(refresh))
    assert status == 200
    assert body["access_token"] != access
    assert "refresh_token" not in body
    assert set(body["scope"].split()) == {CALENDAR_EVENTS, READONLY}
    assert body["expires_in"] == 3599
    assert auto.store.valid_access_token(body["access_token"]) is not None
    assert auto.store.requests["oauth.token"] == 1
    assert auto.store.requests["oauth.token.refresh_token"] == 1


async def test_refresh_may_narrow_but_not_widen_scope(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    _, refresh = auto.grant(HINT, scopes=(CALENDAR_EVENTS, READONLY))
    status, narrowed = await post_token(http, auto, refresh_form(refresh, scope=READONLY))
    assert status == 200
    assert narrowed["scope"] == READONLY
    status, widened = await post_token(
        http, auto, refresh_form(refresh, scope=f"{READONLY} openid")
    )
    assert status == 400
    assert widened["error"] == "invalid_scope"


async def test_refresh_by_another_client_is_unauthorized_client(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    _, refresh = auto.grant(HINT)
    form = refresh_form(refresh, client_id=OTHER.client_id, client_secret=OTHER.client_secret)
    status, body = await post_token(http, auto, form)
    assert status == 401
    assert body["error"] == "unauthorized_client"


async def test_refresh_with_a_revoked_token_is_invalid_grant(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    _, refresh = auto.grant(HINT)
    auto.store.revoke_grant(HINT, DEMO_CLIENT_ID)
    status, body = await post_token(http, auto, refresh_form(refresh))
    assert status == 400
    assert body == {
        "error": "invalid_grant",
        "error_description": "Token has been expired or revoked.",
    }


# Revoke ---------------------------------------------------------------------------------------


async def test_revoking_an_access_token_ends_the_grant(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    access, refresh = auto.grant(HINT)
    resp = await http.post(f"{auto.url}/revoke", params={"token": access})
    assert resp.status == 200
    assert await resp.json() == {}
    assert (DEMO_CLIENT_ID, HINT) not in auto.store.grants
    status, _ = await post_token(http, auto, refresh_form(refresh))
    assert status == 400


async def test_revoking_a_refresh_token_in_the_body_kills_its_access_tokens(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    access, refresh = auto.grant(HINT)
    resp = await http.post(f"{auto.url}/revoke", data={"token": refresh})
    assert resp.status == 200
    assert auto.store.valid_access_token(access) is None
    assert refresh not in auto.store.refresh_tokens


async def test_revoking_only_touches_that_client(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    access, _ = auto.grant(HINT)
    other_access, _ = auto.grant(HINT, client_id=OTHER.client_id)
    assert (await http.post(f"{auto.url}/revoke", params={"token": access})).status == 200
    assert auto.store.valid_access_token(other_access) is not None


async def test_revoking_an_unknown_or_revoked_token_is_400(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    access, _ = auto.grant(HINT)
    assert (await http.post(f"{auto.url}/revoke", params={"token": access})).status == 200
    again = await http.post(f"{auto.url}/revoke", params={"token": access})
    assert again.status == 400
    assert await again.json() == {
        "error": "invalid_token",
        "error_description": "Token expired or revoked",
    }


# ID tokens and userinfo -----------------------------------------------------------------------


async def test_id_token_is_a_signed_jwt_with_google_claims(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    body = await tokens_for(
        http, auto, scope=f"openid email {CALENDAR_EVENTS}", nonce="n-0S6", access_type="offline"
    )
    id_token = body["id_token"]
    header, claims = jwt_part(id_token, 0), jwt_part(id_token, 1)
    account = auto.store.accounts[HINT]
    assert header["alg"] == "RS256"
    assert claims["iss"] == auto.url
    assert claims["aud"] == DEMO_CLIENT_ID
    assert claims["sub"] == account.sub
    assert claims["email"] == HINT
    assert claims["email_verified"] is True
    assert claims["nonce"] == "n-0S6"
    assert claims["exp"] - claims["iat"] == 3600
    assert set(body["scope"].split()) == {"openid", EMAIL, CALENDAR_EVENTS}

    jwks = await (await http.get(f"{auto.url}/oauth2/v3/certs")).json()
    (key,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    public = rsa.RSAPublicNumbers(b64url_int(key["e"]), b64url_int(key["n"])).public_key()
    signing_input, _, signature = id_token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    public.verify(raw, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())

    status, refreshed = await post_token(http, auto, refresh_form(body["refresh_token"]))
    assert status == 200
    assert jwt_part(refreshed["id_token"], 1)["sub"] == account.sub
    assert "nonce" not in jwt_part(refreshed["id_token"], 1)


async def test_no_id_token_without_identity_scopes(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    assert "id_token" not in await tokens_for(http, auto, scope=CALENDAR_EVENTS)


async def test_userinfo_answers_for_identity_scopes_only(
    http: aiohttp.ClientSession, auto: Emulator
) -> None:
    with_email, _ = auto.grant(HINT, scopes=(EMAIL,))
    calendar_only, _ = auto.grant("bob@example.com", scopes=(CALENDAR_EVENTS,))
    url = f"{auto.url}/v1/userinfo"
    info = await (await http.get(url, headers={"Authorization": f"Bearer {with_email}"})).json()
    refused = await http.get(url, headers={"Authorization": f"Bearer {calendar_only}"})
    anonymous = await http.get(url)
    assert info == {
        "sub": auto.store.accounts[HINT].sub,
        "email": HINT,
        "email_verified": True,
    }
    assert refused.status == 403
    assert anonymous.status == 401
