"""Personal data of accounts at rest: sealed with AES-GCM, e-mails found by a keyed hash.

Every key here is derived (HKDF-SHA-256) from the gateway's key-encryption key, so no new
secret has to be deployed, and each purpose has its own key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


def _derive(kek: bytes, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"refex-gateway:{purpose}".encode()
    ).derive(kek)


def normalised_email(email: str) -> str:
    """Return the form e-mails are compared in (case-insensitive, no surrounding blanks)."""
    return email.strip().casefold()


class SealError(RuntimeError):
    """A sealed value does not open with the current key-encryption key."""


class PeopleVault:
    """Seal and open account fields; hash e-mails and sign short-lived form values."""

    def __init__(self, kek: bytes) -> None:
        self._index_key = _derive(kek, "email-index")
        self._seal = AESGCM(_derive(kek, "account-fields"))
        self._mac_key = _derive(kek, "sign-in-forms")

    def email_index(self, email: str) -> str:
        """Return the keyed hash an e-mail is looked up by."""
        return hmac.new(
            self._index_key, normalised_email(email).encode(), hashlib.sha256
        ).hexdigest()

    def seal(self, *, owner: str, field: str, text: str) -> bytes:
        """Encrypt `text`, bound to its owner and field (a row's value cannot move)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._seal.encrypt(nonce, text.encode(), f"{owner}:{field}".encode())

    def open(self, *, owner: str, field: str, sealed: bytes) -> str:
        """Decrypt a value sealed by `seal`."""
        try:
            plain = self._seal.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], f"{owner}:{field}".encode()
            )
        except InvalidTag:
            raise SealError("an account field does not open with this key-encryption key") from None
        return plain.decode()

    def mac(self, *parts: str) -> str:
        """Return an HMAC over `parts` (sign-in form tokens), hex."""
        message = "\x1f".join(parts).encode()
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()

    def mac_matches(self, expected_mac: str, *parts: str) -> bool:
        """Check an HMAC from `mac` in constant time."""
        return hmac.compare_digest(expected_mac, self.mac(*parts))
