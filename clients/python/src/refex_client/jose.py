"""Sealing and opening JWE on the partner's machine (jwcrypto): private keys never leave it.

Every JWE is general JSON serialisation, ECDH-ES+A256KW per recipient, A256GCM content, with
the AAD refex expects; only `enc`/`cty` in the protected header and `alg`/`kid`/`epk` per
recipient, as refex accepts for sealed sections.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

from jwcrypto import jwe, jwk
from jwcrypto.common import JWException

KEY_ALG = "ECDH-ES+A256KW"
CONTENT_ENC = "A256GCM"
ALLOWED_ALGS = [KEY_ALG, CONTENT_ENC]
PROTECTED = json.dumps({"enc": CONTENT_ENC, "cty": "application/json"}, separators=(",", ":"))


class SealingError(ValueError):
    """A JWE cannot be sealed or opened with the given keys."""


def section_aad(referral_id: str, category: str) -> str:
    """The AAD binding a sealed section to its referral and category."""
    return f"refex:referral:{referral_id}:section:{category}"


def referral_aad(referral_id: str) -> str:
    """The AAD of a server-mode case file."""
    return f"refex:referral:{referral_id}"


def note_aad(referral_id: str) -> str:
    """The AAD of a note."""
    return f"refex:note:{referral_id}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(plaintext: bytes, public_jwks: Iterable[Mapping[str, Any]], *, aad: str) -> dict[str, Any]:
    """Encrypt `plaintext` to every public key (one recipient entry per `kid`), binding `aad`."""
    keys = {str(key["kid"]): key for key in public_jwks}
    if not keys:
        raise SealingError("There is no key to encrypt to.")
    token = jwe.JWE(plaintext, protected=PROTECTED, aad=aad.encode(), algs=ALLOWED_ALGS)
    for kid, key in keys.items():
        public = {k: v for k, v in key.items() if k in ("kty", "crv", "x", "y", "kid")}
        header = json.dumps({"alg": KEY_ALG, "kid": kid})
        token.add_recipient(jwk.JWK(**public), header=header)
    general: dict[str, Any] = json.loads(token.serialize(compact=False))
    if "recipients" not in general:  # jwcrypto flattens a single recipient
        entry = {"header": general.pop("header"), "encrypted_key": general.pop("encrypted_key")}
        general["recipients"] = [entry]
    return general


def open_jwe(token: Mapping[str, Any], private_jwk: Mapping[str, Any], *, aad: str) -> bytes:
    """Decrypt the entry for `private_jwk`'s kid; refuse a JWE bound to anything but `aad`."""
    if token.get("aad") is None or _unb64url(str(token["aad"])) != aad.encode():
        raise SealingError("The JWE belongs to another record: its AAD differs.")
    kid = private_jwk.get("kid")
    entries = [
        entry
        for entry in token.get("recipients", [])
        if isinstance(entry, Mapping) and entry.get("header", {}).get("kid") == kid
    ]
    if len(entries) != 1:
        raise SealingError(f"The JWE is not encrypted to your key {kid!r}.")
    # Only our own entry, so jwcrypto never tries (and times) the other parties' entries.
    mine = {k: v for k, v in token.items() if k != "recipients"} | dict(entries[0])
    reader = jwe.JWE(algs=ALLOWED_ALGS)
    try:
        reader.deserialize(json.dumps(mine), key=jwk.JWK(**private_jwk))
    except (JWException, ValueError) as error:
        raise SealingError(f"The JWE cannot be decrypted with your key: {error}") from None
    plaintext: bytes = reader.payload
    return plaintext


def thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public key."""
    public = {k: v for k, v in public_jwk.items() if k in ("kty", "crv", "x", "y")}
    return str(jwk.JWK(**public).thumbprint())
