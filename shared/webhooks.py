"""Webhook body signatures: ES256 detached JWS (RFC 7515 Appendix F) over the exact body bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from shared.crypto import (
    CryptoError,
    InvalidKey,
    b64url_decode,
    b64url_encode,
    describe_algorithm,
    load_private_key,
    load_public_key,
    public_members,
    strict_json_object,
    thumbprint,
)
from shared.i18n import N_, Message

SIGNATURE_ALG = "ES256"
SIGNATURE_HEADER = "X-Refex-Signature"
MAX_SIGNATURE_CHARS = 4096
SIGNATURE_BYTES = 64


class WebhookSignatureError(CryptoError):
    """A webhook signature is missing, malformed, from an unknown key or does not match."""

    title = N_("Webhook signature not valid")
    slug = "invalid-webhook-signature"
    detail = N_(
        "The webhook signature does not verify against the sender's published keys; "
        "discard the delivery."
    )


def generate_signing_key(kid: str | None = None) -> dict[str, Any]:
    """Create a private ES256 signing JWK; kid defaults to its thumbprint."""
    private = ec.generate_private_key(ec.SECP256R1())
    members = public_members(private.public_key())
    return {
        **members,
        "d": b64url_encode(private.private_numbers().private_value.to_bytes(32, "big")),
        "kid": kid or thumbprint(members),
        "use": "sig",
        "alg": SIGNATURE_ALG,
    }


def _signing_input(header_b64: str, body: bytes) -> bytes:
    return f"{header_b64}.{b64url_encode(body)}".encode("ascii")


def sign_body(body: bytes, private_jwk: dict[str, Any]) -> str:
    """Sign `body` and return the detached compact JWS `header..signature`."""
    kid = private_jwk.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidKey(N_("The signing key has no 'kid'; receivers need it to pick the key."))
    private = load_private_key(private_jwk)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise InvalidKey(N_("Webhook signing needs an EC P-256 key (ES256)."))
    header = json.dumps({"alg": SIGNATURE_ALG, "kid": kid}, separators=(",", ":"))
    header_b64 = b64url_encode(header.encode())
    der = private.sign(_signing_input(header_b64, body), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{header_b64}..{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _split(signature: object) -> tuple[str, str]:
    if not isinstance(signature, str) or not signature:
        raise WebhookSignatureError(N_("The webhook carries no signature."))
    if len(signature) > MAX_SIGNATURE_CHARS:
        raise WebhookSignatureError(N_("The webhook signature is too long to be valid."))
    parts = signature.split(".")
    if len(parts) != 3 or parts[1]:
        raise WebhookSignatureError(
            N_("The webhook signature must be a detached JWS of the form 'header..signature'.")
        )
    return parts[0], parts[2]


def _checked_header(header_b64: str) -> dict[str, Any]:
    raw = b64url_decode(header_b64, member="header", error=WebhookSignatureError)
    header = strict_json_object(raw, what="signature header", error=WebhookSignatureError)
    if header.get("alg") != SIGNATURE_ALG:
        raise WebhookSignatureError(
            Message(
                "The webhook signature must use {signature_alg}, not {alg}.",
                signature_alg=SIGNATURE_ALG,
                alg=describe_algorithm(header.get("alg")),
            )
        )
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise WebhookSignatureError(N_("The webhook signature names no key ('kid')."))
    if header.get("b64", True) is not True:
        raise WebhookSignatureError(N_("Unencoded payloads ('b64': false) are not accepted."))
    if header.get("crit", ["b64"]) != ["b64"]:
        raise WebhookSignatureError(
            N_("The signature requires extensions ('crit') we do not support.")
        )
    return header


def _verification_key(jwks: Mapping[str, Any], kid: str) -> ec.EllipticCurvePublicKey:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    matches = [k for k in keys or [] if isinstance(k, Mapping) and k.get("kid") == kid]
    if len(matches) != 1:
        raise WebhookSignatureError(
            N_(
                "The webhook was signed with a key the sender does not publish. "
                "Refresh the sender's JWKS; if it is still missing, discard the delivery."
            )
        )
    jwk = matches[0]
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", SIGNATURE_ALG) != SIGNATURE_ALG:
        raise WebhookSignatureError(
            Message(
                "Key '{kid}' is not an {signature_alg} signing key.",
                kid=kid[:80],
                signature_alg=SIGNATURE_ALG,
            )
        )
    try:
        public = load_public_key(jwk)
    except InvalidKey as error:
        raise WebhookSignatureError(
            Message("Key '{kid}' is not usable: {detail}", kid=kid[:80], detail=error.detail)
        ) from None
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise WebhookSignatureError(Message("Key '{kid}' is not an EC P-256 key.", kid=kid[:80]))
    return public


def verify_body(body: bytes, signature: str, jwks: dict[str, Any]) -> None:
    """Check that `signature` signs exactly `body` with a key from `jwks`; raise if not."""
    header_b64, signature_b64 = _split(signature)
    header = _checked_header(header_b64)
    public = _verification_key(jwks, header["kid"])
    raw = b64url_decode(signature_b64, member="signature", error=WebhookSignatureError)
    if len(raw) != SIGNATURE_BYTES:
        raise WebhookSignatureError(N_("The webhook signature has the wrong length for ES256."))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, _signing_input(header_b64, body), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise WebhookSignatureError(
            N_(
                "The webhook signature does not match the body: it was altered or signed by "
                "another key. Discard the delivery."
            )
        ) from None
