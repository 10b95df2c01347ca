"""Secrets at rest: sealed under the newest key, readable under any, bound to their owner."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from gcal.crypto import Cipher, generate_key
from gcal.errors import InternalError


def test_sealed_value_opens_and_holds_no_plaintext() -> None:
    cipher = Cipher([generate_key()])
    blob = cipher.seal("tokens", "user-1", {"refresh_token": "1//0g-secret"})
    assert b"1//0g-secret" not in blob
    assert cipher.open("tokens", "user-1", blob) == {"refresh_token": "1//0g-secret"}


def test_a_value_copied_to_another_user_does_not_open() -> None:
    cipher = Cipher([generate_key()])
    blob = cipher.seal("tokens", "user-1", {"refresh_token": "x"})
    with pytest.raises(InternalError, match="another record"):
        cipher.open("tokens", "user-2", blob)
    with pytest.raises(InternalError, match="another record"):
        cipher.open("oauth_state", "user-1", blob)


def test_rotation_old_values_open_then_move_to_the_new_key() -> None:
    old, new = generate_key(), generate_key()
    blob = Cipher([old]).seal("tokens", "u", {"v": 1})
    rotated_cipher = Cipher([SecretStr(new), SecretStr(old)])
    assert not rotated_cipher.is_current(blob)
    assert rotated_cipher.open("tokens", "u", blob) == {"v": 1}
    moved = rotated_cipher.rotate(blob)
    assert rotated_cipher.is_current(moved)
    assert Cipher([new]).open("tokens", "u", moved) == {"v": 1}


def test_unknown_key_or_tampering_is_an_error_without_the_secret() -> None:
    blob = Cipher([generate_key()]).seal("tokens", "u", {"refresh_token": "s3cret"})
    with pytest.raises(InternalError) as info:
        Cipher([generate_key()]).open("tokens", "u", blob)
    assert "s3cret" not in str(info.value)
    tampered = blob[:-5] + b"AAAAA"
    with pytest.raises(InternalError):
        Cipher([generate_key()]).open("tokens", "u", tampered)


def test_bad_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="not a valid Fernet key") as info:
        Cipher(["not-a-key-value"])
    assert "not-a-key-value" not in str(info.value)
