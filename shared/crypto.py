"""Payload encryption: JWE (general JSON, ECDH-ES+A256KW, A256GCM) on `cryptography` primitives.

Decryption is written against RFC 7516/7518 directly rather than through joserfc 1.8.0, which
re-serialises the protected header before authenticating it (so JWE from other libraries fails),
tries every recipient entry and refuses ciphertexts over 64 KiB (docs/architecture.md,
"Cryptography"; docs/adr/0003-jwe-on-cryptography-primitives.md).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from shared.errors import UnprocessableContent
from shared.i18n import N_, Joined, Message

KEY_ALG = "ECDH-ES+A256KW"
CONTENT_ENC = "A256GCM"
CONTENT_TYPE = "application/json"
CURVES = {("EC", "P-256"), ("OKP", "X25519")}
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
MAX_HEADER_CHARS = 8192
MAX_RECIPIENTS = 64
MAX_KID_CHARS = 200
MAX_PARTY_INFO_BYTES = 512
WRAPPED_KEY_BYTES = 40
IV_BYTES = 12
TAG_BYTES = 16
# Only registered names are echoed in errors: a header value might carry anything.
JOSE_ALGORITHM_NAMES = frozenset(
    {"none", "dir", "RSA1_5", "RSA-OAEP", "RSA-OAEP-256", "A128KW", "A192KW", "A256KW"}
    | {"ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", KEY_ALG, "A128GCMKW", "A256GCMKW"}
    | {"PBES2-HS256+A128KW", "PBES2-HS512+A256KW", "A128CBC-HS256", "A256CBC-HS512"}
    | {"A128GCM", "A192GCM", CONTENT_ENC, "HS256", "HS512", "RS256", "PS256", "ES256", "EdDSA"}
)
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class CryptoError(UnprocessableContent):
    """An encrypted payload or a key cannot be used."""

    title = N_("Encryption problem")
    slug = "crypto-error"
    detail: str | Message = N_("The encrypted data or the key cannot be used.")


class NoUsableKey(CryptoError):
    """There is no key to encrypt to, or the payload was not encrypted to the given key."""

    title = N_("No usable key")
    slug = "no-usable-key"
    detail = N_("There is no key this data can be encrypted to or decrypted with.")


class InvalidKey(CryptoError):
    """A JWK is not an acceptable encryption key."""

    title = N_("Key not acceptable")
    slug = "invalid-key"
    detail = N_("The key is not an EC P-256 or X25519 encryption key in JWK form.")


class MalformedPayload(CryptoError):
    """The JWE is not well-formed general or flattened JSON serialisation."""

    title = N_("Encrypted payload malformed")
    slug = "malformed-encrypted-payload"
    detail = N_("The encrypted payload is not a well-formed JWE (JSON serialisation).")


class DisallowedAlgorithm(CryptoError):
    """The JWE uses an algorithm or header outside the allow-list."""

    title = N_("Encryption algorithm not allowed")
    slug = "disallowed-algorithm"
    detail = Message("Only {alg} with {enc} is accepted.", alg=KEY_ALG, enc=CONTENT_ENC)


class EncryptedPayloadTooLarge(CryptoError):
    """The ciphertext exceeds the caller's size limit."""

    title = N_("Encrypted payload too large")
    slug = "encrypted-payload-too-large"
    detail = N_("The encrypted payload is larger than allowed.")


class UndecryptablePayload(CryptoError):
    """Authentication failed: wrong key material, or the JWE was altered."""

    title = N_("Encrypted payload cannot be decrypted")
    slug = "undecryptable-payload"
    detail = N_(
        "The payload failed its integrity check: it was altered, or this recipient entry "
        "does not belong to it. Ask the sender to send it again."
    )


# --- base64url and strict JSON -------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """Encode without padding, as JOSE requires."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(
    value: object, *, member: str, error: type[CryptoError] = MalformedPayload
) -> bytes:
    """Decode unpadded base64url strictly, naming `member` when it is not."""
    if not isinstance(value, str) or len(value) % 4 == 1 or not _B64URL.fullmatch(value):
        raise error(f"'{member}' is not unpadded base64url text.")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise error(f"'{member}' is not unpadded base64url text.") from None


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def strict_json_object(raw: bytes | str, *, what: str, error: type[CryptoError]) -> dict[str, Any]:
    """Parse a JSON object, refusing duplicate members, NaN/Infinity and deep nesting."""
    try:
        value = json.loads(raw, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError, UnicodeDecodeError):
        raise error(
            f"The {what} is not valid JSON, or repeats a member name (which JOSE forbids)."
        ) from None
    if not isinstance(value, dict):
        raise error(f"The {what} must be a JSON object.")
    return value


# --- keys ------------------------------------------------------------------------------------


def _coordinate(jwk: Mapping[str, Any], name: str) -> bytes:
    raw = b64url_decode(jwk.get(name), member=name, error=InvalidKey)
    if len(raw) != 32:
        raise InvalidKey(Message("Key coordinate '{name}' must be 32 bytes.", name=name))
    return raw


def _key_kind(jwk: Mapping[str, Any]) -> tuple[str, str]:
    kind = (str(jwk.get("kty")), str(jwk.get("crv")))
    if kind not in CURVES:
        raise InvalidKey(
            Message(
                "Key type {kty}/{crv} is not accepted; use EC P-256 or OKP X25519.",
                kty=kind[0],
                crv=kind[1],
            )
        )
    return kind


@lru_cache(maxsize=512)
def _public_key_from(
    kty: str, crv: str, x: str, y: str | None
) -> ec.EllipticCurvePublicKey | x25519.X25519PublicKey:
    jwk = {"kty": kty, "crv": crv, "x": x, "y": y}
    if kty == "OKP":
        return x25519.X25519PublicKey.from_public_bytes(_coordinate(jwk, "x"))
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_coordinate(jwk, "x"), "big"),
        int.from_bytes(_coordinate(jwk, "y"), "big"),
        ec.SECP256R1(),
    )
    try:
        return numbers.public_key()
    except ValueError:
        raise InvalidKey(N_("The key's point is not on the P-256 curve.")) from None


def load_public_key(jwk: Mapping[str, Any]) -> ec.EllipticCurvePublicKey | x25519.X25519PublicKey:
    """Turn a public JWK into a key object, checking the point is on its curve."""
    kty, crv = _key_kind(jwk)
    x, y = jwk.get("x"), jwk.get("y")
    if not isinstance(x, str) or (kty == "EC" and not isinstance(y, str)):
        raise InvalidKey(N_("The key lacks its coordinates ('x', and 'y' for EC)."))
    return _public_key_from(kty, crv, x, y if kty == "EC" else None)


def load_private_key(
    jwk: Mapping[str, Any],
) -> ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey:
    """Turn a private JWK into a key object, checking it matches its public part."""
    if not isinstance(jwk, Mapping):
        raise InvalidKey(N_("The private key must be a JWK (a JSON object)."))
    kty, _ = _key_kind(jwk)
    d = b64url_decode(jwk.get("d"), member="d", error=InvalidKey)
    if kty == "OKP":
        if len(d) != 32:
            raise InvalidKey(N_("The private key 'd' must be 32 bytes."))
        private: Any = x25519.X25519PrivateKey.from_private_bytes(d)
    else:
        public = load_public_key(jwk)
        assert isinstance(public, ec.EllipticCurvePublicKey)
        try:
            private = ec.EllipticCurvePrivateNumbers(
                int.from_bytes(d, "big"), public.public_numbers()
            ).private_key()
        except ValueError:
            raise InvalidKey(N_("The private key 'd' does not match its public part.")) from None
    if kty == "OKP" and "x" in jwk and _okp_x(private.public_key()) != jwk["x"]:
        raise InvalidKey(N_("The private key 'd' does not match its public part."))
    return private  # type: ignore[no-any-return]


def _okp_x(public: x25519.X25519PublicKey) -> str:
    return b64url_encode(public.public_bytes_raw())


def public_members(key: ec.EllipticCurvePublicKey | x25519.X25519PublicKey) -> dict[str, str]:
    """Return the JWK members (kty, crv, x, y) of a public key."""
    if isinstance(key, x25519.X25519PublicKey):
        return {"kty": "OKP", "crv": "X25519", "x": _okp_x(key)}
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(numbers.x.to_bytes(32, "big")),
        "y": b64url_encode(numbers.y.to_bytes(32, "big")),
    }


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """Return the RFC 7638 SHA-256 thumbprint of a public key."""
    required = ("crv", "kty", "x", "y") if jwk.get("kty") == "EC" else ("crv", "kty", "x")
    canonical = json.dumps({k: jwk[k] for k in required}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode()).digest())


def _is_kid(kid: object) -> bool:
    return isinstance(kid, str) and 0 < len(kid) <= MAX_KID_CHARS and kid.isprintable()


def public_jwk_problems(jwk: dict[str, Any]) -> list[str | Message]:
    """Say why `jwk` cannot be registered as an encryption key; an empty list means it can."""
    if not isinstance(jwk, Mapping):
        return [Message("The key must be a JWK (a JSON object).")]
    problems: list[str | Message] = []
    if PRIVATE_MEMBERS & jwk.keys():
        problems.append(
            Message("The key contains private parts ('d'); register only the public key.")
        )
    kid = jwk.get("kid")
    if not _is_kid(kid):
        problems.append(
            Message(
                "'kid' must be 1 to {max_kid_chars} printable characters.",
                max_kid_chars=MAX_KID_CHARS,
            )
        )
    if jwk.get("use") != "enc":
        problems.append(Message("'use' must be \"enc\" for an encryption key."))
    if "alg" in jwk and jwk["alg"] != KEY_ALG:
        problems.append(Message("'alg' must be \"{key_alg}\" when given.", key_alg=KEY_ALG))
    try:
        _check_usable_public(jwk)
    except InvalidKey as error:
        problems.append(error.detail)
    return problems


def _check_usable_public(jwk: Mapping[str, Any]) -> None:
    public = load_public_key(jwk)
    # A small-order X25519 point yields an all-zero secret; cryptography refuses it here.
    if isinstance(public, x25519.X25519PublicKey):
        try:
            x25519.X25519PrivateKey.generate().exchange(public)
        except ValueError:
            raise InvalidKey(
                N_("The X25519 key is a small-order point and cannot be used.")
            ) from None


def generate_encryption_key(kid: str | None = None, *, curve: str = "P-256") -> dict[str, Any]:
    """Create a private encryption JWK (P-256, or X25519); kid defaults to its thumbprint."""
    if curve == "X25519":
        private_okp = x25519.X25519PrivateKey.generate()
        members = public_members(private_okp.public_key())
        d = private_okp.private_bytes_raw()
    elif curve == "P-256":
        private_ec = ec.generate_private_key(ec.SECP256R1())
        members = public_members(private_ec.public_key())
        d = private_ec.private_numbers().private_value.to_bytes(32, "big")
    else:
        raise InvalidKey(
            Message("Curve {curve} is not accepted; use P-256 or X25519.", curve=curve)
        )
    return {
        **members,
        "d": b64url_encode(d),
        "kid": kid or thumbprint(members),
        "use": "enc",
        "alg": KEY_ALG,
    }


def public_part(private_jwk: dict[str, Any]) -> dict[str, Any]:
    """Return the JWK without its private members, ready to register."""
    return {k: v for k, v in private_jwk.items() if k not in PRIVATE_MEMBERS}


# --- key agreement ---------------------------------------------------------------------------


def _length_prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def concat_kdf(shared_secret: bytes, *, apu: bytes = b"", apv: bytes = b"") -> bytes:
    """Derive the 256-bit key-wrapping key (RFC 7518 §4.6.2, one SHA-256 round)."""
    other_info = (
        _length_prefixed(KEY_ALG.encode())
        + _length_prefixed(apu)
        + _length_prefixed(apv)
        + (256).to_bytes(4, "big")
    )
    return hashlib.sha256(b"\x00\x00\x00\x01" + shared_secret + other_info).digest()


def _agree(private: Any, public: Any) -> bytes:
    if isinstance(private, x25519.X25519PrivateKey):
        return private.exchange(public)
    return private.exchange(ec.ECDH(), public)  # type: ignore[no-any-return]


def _ephemeral_for(public: Any) -> Any:
    if isinstance(public, x25519.X25519PublicKey):
        return x25519.X25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


# --- encryption ------------------------------------------------------------------------------

_PROTECTED_B64 = b64url_encode(
    json.dumps({"enc": CONTENT_ENC, "cty": CONTENT_TYPE}, separators=(",", ":")).encode()
)


def _checked_recipients(recipients: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    if not recipients:
        raise NoUsableKey(N_("There is no recipient key to encrypt to; register a key first."))
    checked: dict[str, Any] = {}
    for jwk in recipients:
        problems = public_jwk_problems(jwk)
        if problems:
            raise InvalidKey(
                Message(
                    "Recipient key {kid} cannot be used: {problems}",
                    kid=_kid_of(jwk),
                    problems=Joined(problems),
                )
            )
        public = load_public_key(jwk)
        known = checked.setdefault(jwk["kid"], public)
        # The same key listed twice (e.g. by two parties' key sets) is one recipient, not a clash.
        if public_members(known) != public_members(public):
            raise InvalidKey(
                Message("Two different recipient keys share the kid '{kid}'.", kid=jwk["kid"])
            )
    return list(checked.items())


def _kid_of(jwk: object) -> str:
    kid = jwk.get("kid") if isinstance(jwk, Mapping) else None
    return f"'{kid}'" if _is_kid(kid) else "without a valid kid"


def _recipient_entry(kid: str, public: Any, cek: bytes) -> dict[str, Any]:
    ephemeral = _ephemeral_for(public)
    kek = concat_kdf(_agree(ephemeral, public))
    header = {"alg": KEY_ALG, "kid": kid, "epk": public_members(ephemeral.public_key())}
    return {"header": header, "encrypted_key": b64url_encode(aes_key_wrap(kek, cek))}


def encrypt_for(
    plaintext: bytes, recipients: list[dict[str, Any]], *, aad: bytes | None = None
) -> dict[str, Any]:
    """Encrypt `plaintext` to every public JWK in `recipients` (JWE general JSON)."""
    checked = _checked_recipients(recipients)
    cek = AESGCM.generate_key(bit_length=256)
    iv = os.urandom(IV_BYTES)
    jwe: dict[str, Any] = {
        "protected": _PROTECTED_B64,
        "recipients": [_recipient_entry(kid, public, cek) for kid, public in checked],
    }
    authenticated = _PROTECTED_B64
    if aad is not None:
        jwe["aad"] = b64url_encode(aad)
        authenticated += "." + jwe["aad"]
    sealed = AESGCM(cek).encrypt(iv, plaintext, authenticated.encode("ascii"))
    jwe["iv"] = b64url_encode(iv)
    jwe["ciphertext"] = b64url_encode(sealed[:-TAG_BYTES])
    jwe["tag"] = b64url_encode(sealed[-TAG_BYTES:])
    return jwe


# --- decryption ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Parsed:
    """The parts of a JWE needed to decrypt one recipient entry."""

    protected_b64: str
    aad_b64: str | None
    recipients: list[dict[str, Any]]
    shared_header: dict[str, Any]


def _as_object(jwe: Mapping[str, Any] | str | bytes) -> Mapping[str, Any]:
    if isinstance(jwe, str | bytes):
        if len(jwe) > 64 * 1024 * 1024:
            raise EncryptedPayloadTooLarge(N_("The encrypted payload is far larger than allowed."))
        return strict_json_object(jwe, what="encrypted payload", error=MalformedPayload)
    if not isinstance(jwe, Mapping):
        raise MalformedPayload(N_("The encrypted payload must be a JWE JSON object."))
    return jwe


def _optional_object(value: object, *, member: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload(Message("'{member}' must be a JSON object.", member=member))
    return value


def _recipients_of(jwe: Mapping[str, Any]) -> list[dict[str, Any]]:
    if "recipients" not in jwe:
        if "encrypted_key" not in jwe and "header" not in jwe:
            raise MalformedPayload(N_("The JWE has no 'recipients' (nor a flattened recipient)."))
        return [{"header": jwe.get("header"), "encrypted_key": jwe.get("encrypted_key")}]
    if "encrypted_key" in jwe or "header" in jwe:
        raise MalformedPayload(N_("The JWE mixes 'recipients' with flattened recipient members."))
    recipients = jwe["recipients"]
    if not isinstance(recipients, list) or not recipients:
        raise MalformedPayload(N_("'recipients' must be a non-empty list."))
    if len(recipients) > MAX_RECIPIENTS:
        raise MalformedPayload(
            Message(
                "The JWE has more than {max_recipients} recipients.", max_recipients=MAX_RECIPIENTS
            )
        )
    if not all(isinstance(r, dict) for r in recipients):
        raise MalformedPayload(N_("Each entry of 'recipients' must be a JSON object."))
    return recipients


def _protected_header(protected_b64: object) -> dict[str, Any]:
    if not isinstance(protected_b64, str) or not protected_b64:
        raise MalformedPayload(N_("The JWE lacks its 'protected' header."))
    if len(protected_b64) > MAX_HEADER_CHARS:
        raise MalformedPayload(N_("The JWE's protected header is too large."))
    raw = b64url_decode(protected_b64, member="protected")
    return strict_json_object(raw, what="protected header", error=MalformedPayload)


def _parse(jwe: Mapping[str, Any] | str | bytes) -> _Parsed:
    body = _as_object(jwe)
    protected = _protected_header(body.get("protected"))
    unprotected = _optional_object(body.get("unprotected"), member="unprotected")
    _check_disjoint(protected, unprotected)
    aad = body.get("aad")
    if aad is not None and not isinstance(aad, str):
        raise MalformedPayload(N_("'aad' must be base64url text."))
    if aad is not None:
        b64url_decode(aad, member="aad")  # refuses non-base64url text before it is authenticated
    return _Parsed(
        protected_b64=body["protected"],
        aad_b64=aad,
        recipients=_recipients_of(body),
        shared_header={**protected, **unprotected},
    )


def _check_disjoint(*headers: Mapping[str, Any]) -> None:
    seen: set[str] = set()
    for header in headers:
        if seen & header.keys():
            raise MalformedPayload(N_("A header member appears in more than one JWE header."))
        seen |= header.keys()


def _header_of(parsed: _Parsed, entry: Mapping[str, Any]) -> dict[str, Any]:
    own = _optional_object(entry.get("header"), member="header")
    _check_disjoint(parsed.shared_header, own)
    return {**parsed.shared_header, **own}


def recipient_kids(jwe: dict[str, Any]) -> list[str]:
    """List the kid of every recipient entry (entries without a kid are skipped)."""
    parsed = _parse(jwe)
    kids = (_header_of(parsed, entry).get("kid") for entry in parsed.recipients)
    return [kid for kid in kids if isinstance(kid, str)]


def _select_entry(parsed: _Parsed, kid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    matches = [
        (entry, header)
        for entry in parsed.recipients
        if (header := _header_of(parsed, entry)).get("kid") == kid
    ]
    if not matches:
        raise NoUsableKey(
            Message(
                "This payload was not encrypted to your key '{kid}'. Check that you use "
                "the key registered in the directory, or ask the sender to encrypt it "
                "to your current key.",
                kid=kid,
            )
        )
    if len(matches) > 1:
        raise MalformedPayload(
            Message("The JWE has several recipient entries for key '{kid}'.", kid=kid)
        )
    return matches[0]


def describe_algorithm(value: object) -> str | Message:
    """Name a header's algorithm for an error message without echoing arbitrary text."""
    if value is None:
        return Message("none given")
    known = isinstance(value, str) and value in JOSE_ALGORITHM_NAMES
    return repr(value) if known else Message("an unrecognised value")


def _check_algorithms(header: Mapping[str, Any]) -> None:
    if header.get("alg") != KEY_ALG:
        raise DisallowedAlgorithm(
            Message(
                "Key management algorithm {alg} is not allowed; only {key_alg} is accepted.",
                alg=describe_algorithm(header.get("alg")),
                key_alg=KEY_ALG,
            )
        )
    if header.get("enc") != CONTENT_ENC:
        raise DisallowedAlgorithm(
            Message(
                "Content encryption {enc} is not allowed; only {content_enc} is accepted.",
                enc=describe_algorithm(header.get("enc")),
                content_enc=CONTENT_ENC,
            )
        )
    if "zip" in header:
        raise DisallowedAlgorithm(
            N_("Compressed JWE ('zip') is not accepted; send it uncompressed.")
        )
    if "crit" in header:
        raise DisallowedAlgorithm(
            N_("The JWE requires extensions ('crit') that we do not support.")
        )


def _party_info(header: Mapping[str, Any], member: str) -> bytes:
    if member not in header:
        return b""
    value = b64url_decode(header[member], member=member)
    if len(value) > MAX_PARTY_INFO_BYTES:
        raise MalformedPayload(Message("'{member}' is too long.", member=member))
    return value


def _ephemeral_public(header: Mapping[str, Any], private: Any) -> Any:
    epk = header.get("epk")
    if not isinstance(epk, dict):
        raise MalformedPayload(N_("The recipient entry lacks its ephemeral public key ('epk')."))
    if PRIVATE_MEMBERS & epk.keys():
        raise MalformedPayload(N_("The ephemeral key ('epk') must not contain private parts."))
    try:
        public = load_public_key(epk)
    except InvalidKey as error:
        raise UndecryptablePayload(
            Message("The ephemeral key ('epk') is not usable: {detail}", detail=error.detail)
        ) from None
    same_kind = isinstance(private, x25519.X25519PrivateKey) == isinstance(
        public, x25519.X25519PublicKey
    )
    if not same_kind:
        raise UndecryptablePayload(N_("The ephemeral key ('epk') is not on your key's curve."))
    return public


def _unwrap_cek(header: Mapping[str, Any], entry: Mapping[str, Any], private: Any) -> bytes:
    epk = _ephemeral_public(header, private)
    try:
        shared_secret = _agree(private, epk)
    except ValueError:
        raise UndecryptablePayload(N_("The ephemeral key ('epk') is a weak point.")) from None
    kek = concat_kdf(shared_secret, apu=_party_info(header, "apu"), apv=_party_info(header, "apv"))
    wrapped = b64url_decode(entry.get("encrypted_key"), member="encrypted_key")
    if len(wrapped) != WRAPPED_KEY_BYTES:
        raise UndecryptablePayload(N_("The wrapped content key has the wrong length."))
    try:
        return aes_key_unwrap(kek, wrapped)
    except InvalidUnwrap:
        raise UndecryptablePayload() from None


def _content_parts(jwe: Mapping[str, Any], max_bytes: int) -> tuple[bytes, bytes, bytes]:
    ciphertext_b64 = jwe.get("ciphertext")
    if isinstance(ciphertext_b64, str) and len(ciphertext_b64) * 3 // 4 > max_bytes:
        raise EncryptedPayloadTooLarge(
            Message(
                "The encrypted payload is larger than the {max_bytes} bytes allowed here.",
                max_bytes=max_bytes,
            )
        )
    iv = b64url_decode(jwe.get("iv"), member="iv")
    tag = b64url_decode(jwe.get("tag"), member="tag")
    ciphertext = b64url_decode(ciphertext_b64, member="ciphertext")
    if len(iv) != IV_BYTES or len(tag) != TAG_BYTES:
        raise UndecryptablePayload(
            Message(
                "The JWE needs a {iv_bytes}-byte 'iv' and a {tag_bytes}-byte 'tag'.",
                iv_bytes=IV_BYTES,
                tag_bytes=TAG_BYTES,
            )
        )
    return iv, ciphertext, tag


def decrypt_with(
    jwe: dict[str, Any] | str | bytes,
    private_jwk: dict[str, Any],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    aad: bytes | None = None,
) -> bytes:
    """Decrypt the recipient entry named by `private_jwk`'s kid; `aad`, if given, must match."""
    kid = private_jwk.get("kid") if isinstance(private_jwk, Mapping) else None
    if not isinstance(kid, str) or not kid:
        raise InvalidKey(N_("Your private key has no 'kid'; add the kid it was registered with."))
    private = load_private_key(private_jwk)
    body = _as_object(jwe)
    parsed = _parse(body)
    entry, header = _select_entry(parsed, kid)
    _check_algorithms(header)
    iv, ciphertext, tag = _content_parts(body, max_bytes)
    authenticated = parsed.protected_b64
    if parsed.aad_b64 is not None:
        if aad is not None and b64url_decode(parsed.aad_b64, member="aad") != aad:
            raise UndecryptablePayload(
                N_("The payload belongs to another record (its 'aad' differs).")
            )
        authenticated += "." + parsed.aad_b64
    elif aad is not None:
        raise UndecryptablePayload(N_("The payload is not bound to this record (it has no 'aad')."))
    cek = _unwrap_cek(header, entry, private)
    try:
        return AESGCM(cek).decrypt(iv, ciphertext + tag, authenticated.encode("ascii"))
    except InvalidTag:
        raise UndecryptablePayload() from None


# --- inspection without decrypting --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JweShape:
    """What a JWE says about itself in the clear: recipient key ids and its bound AAD."""

    kids: tuple[str, ...]
    aad: bytes | None
    ciphertext_bytes: int


def inspect_jwe(jwe: Mapping[str, Any], *, max_bytes: int = DEFAULT_MAX_BYTES) -> JweShape:
    """Check a JWE's structure and algorithms and read its clear parts; never decrypts."""
    body = _as_object(jwe)
    parsed = _parse(body)
    kids: list[str] = []
    for entry in parsed.recipients:
        header = _header_of(parsed, entry)
        _check_algorithms(header)
        kid = header.get("kid")
        if not isinstance(kid, str) or not _is_kid(kid):
            raise MalformedPayload(N_("Every recipient entry must name its key ('kid')."))
        if "epk" not in header:
            raise MalformedPayload(N_("A recipient entry lacks its ephemeral public key ('epk')."))
        if len(b64url_decode(entry.get("encrypted_key"), member="encrypted_key")) != 40:
            raise MalformedPayload(N_("A recipient entry's wrapped key has the wrong length."))
        kids.append(kid)
    if len(set(kids)) != len(kids):
        raise MalformedPayload(N_("The JWE names the same key in several recipient entries."))
    _, ciphertext, _ = _content_parts(body, max_bytes)
    aad = None if parsed.aad_b64 is None else b64url_decode(parsed.aad_b64, member="aad")
    return JweShape(kids=tuple(kids), aad=aad, ciphertext_bytes=len(ciphertext))


def key_set_fingerprint(jwks: list[Mapping[str, Any]]) -> str:
    """Fingerprint of a key set: SHA-256 over its sorted `kid:thumbprint` pairs (base64url)."""
    pairs = sorted(f"{jwk['kid']}:{thumbprint(jwk)}" for jwk in jwks)
    return b64url_encode(hashlib.sha256("\n".join(pairs).encode()).digest())
