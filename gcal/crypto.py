"""Encryption of secrets at rest (tokens, PKCE verifiers) with rotatable keys.

Uses ``cryptography``'s Fernet (AES-128-CBC + HMAC-SHA256, authenticated) through
MultiFernet: the first key encrypts, every key decrypts, and :meth:`Cipher.rotate`
re-encrypts under the first. Each sealed value also names its purpose and subject (the user
id) inside the ciphertext, so a value copied to another user's key does not open there::

    cipher = Cipher([new_key, old_key])
    blob = cipher.seal("tokens", "user-42", {"refresh_token": "..."})
    cipher.open("tokens", "user-42", blob)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

from gcal.errors import InternalError

if TYPE_CHECKING:
    from gcal.settings import Settings

log = logging.getLogger(__name__)


def generate_key() -> str:
    """A new random key, in the form ``GCAL_TOKEN_KEYS`` takes."""
    return Fernet.generate_key().decode()


class Cipher:
    """Seals and opens JSON values; the first key is the current one."""

    def __init__(self, keys: Sequence[SecretStr | str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        try:
            fernets = [
                Fernet(k.get_secret_value() if isinstance(k, SecretStr) else k) for k in keys
            ]
        except (ValueError, TypeError) as err:
            # Never echo the key itself.
            raise ValueError("an encryption key is not a valid Fernet key") from err
        self._current = fernets[0]
        self._all = MultiFernet(fernets)

    def seal(self, purpose: str, subject: str, value: Mapping[str, Any]) -> bytes:
        plain = json.dumps({"p": purpose, "s": subject, "v": value}, separators=(",", ":"))
        return self._current.encrypt(plain.encode())

    def open(self, purpose: str, subject: str, blob: bytes) -> dict[str, Any]:
        """The sealed value; :class:`InternalError` if it is corrupt, foreign or keyless."""
        try:
            envelope = json.loads(self._all.decrypt(blob))
        except (InvalidToken, ValueError) as err:
            raise InternalError(f"stored {purpose} cannot be decrypted") from err
        if envelope.get("p") != purpose or envelope.get("s") != subject:
            raise InternalError(f"stored {purpose} belongs to another record")
        value: dict[str, Any] = envelope["v"]
        return value

    def is_current(self, blob: bytes) -> bool:
        """Whether ``blob`` is sealed under the current (first) key."""
        try:
            self._current.decrypt(blob)
        except InvalidToken:
            return False
        return True

    def rotate(self, blob: bytes) -> bytes:
        """``blob`` re-encrypted under the current key."""
        try:
            return self._all.rotate(blob)
        except InvalidToken as err:
            raise InternalError("stored value cannot be decrypted") from err


def cipher_for(settings: Settings) -> Cipher:
    """The token cipher from settings; dev mode without keys gets a throwaway key (tokens
    sealed with it die with the process)."""
    if settings.token_keys:
        return Cipher(settings.token_keys)
    log.warning("dev mode: no GCAL_TOKEN_KEYS, using a throwaway key for this process")
    return Cipher([generate_key()])
