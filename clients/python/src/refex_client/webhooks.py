"""Check refex webhook signatures: ES256 detached JWS over the exact body (RFC 7515 App. F)."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from jwcrypto import jwk, jws
from jwcrypto.common import JWException

SIGNATURE_HEADER = "X-Refex-Signature"


class WebhookSignatureError(ValueError):
    """The delivery is not signed by refex with a key it publishes: discard it."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _header(header_b64: str) -> dict[str, Any]:
    try:
        header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    except ValueError:
        raise WebhookSignatureError("The signature header is not base64url JSON.") from None
    if not isinstance(header, dict) or header.get("alg") != "ES256":
        raise WebhookSignatureError("The webhook signature must use ES256.")
    if "crit" in header or header.get("b64", True) is not True:
        raise WebhookSignatureError("The signature asks for extensions we do not accept.")
    return header


def verify_webhook(body: bytes, signature: str, jwks: Mapping[str, Any]) -> None:
    """Raise unless `signature` (the X-Refex-Signature value) signs `body` with a key of `jwks`."""
    parts = signature.split(".") if isinstance(signature, str) else []
    if len(parts) != 3 or parts[1]:
        raise WebhookSignatureError("The signature must be a detached JWS 'header..signature'.")
    header = _header(parts[0])
    matches = [k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")]
    if len(matches) != 1:
        raise WebhookSignatureError("Signed with a key refex does not publish; refresh its JWKS.")
    public = {k: v for k, v in matches[0].items() if k in ("kty", "crv", "x", "y", "kid")}
    token = jws.JWS()
    try:
        token.deserialize(f"{parts[0]}.{_b64url(body)}.{parts[2]}")
        token.verify(jwk.JWK(**public), alg="ES256")
    except (JWException, ValueError):
        raise WebhookSignatureError("The signature does not match the body; discard it.") from None
