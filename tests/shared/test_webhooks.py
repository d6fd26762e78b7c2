"""Webhook body signatures: ES256 detached JWS that partners can verify with any JOSE library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jws as jwcrypto_jws

from shared.crypto import InvalidKey, generate_encryption_key, load_private_key, public_part
from shared.webhooks import (
    WebhookSignatureError,
    generate_signing_key,
    sign_body,
    verify_body,
)

KEY = generate_signing_key("referral-webhooks-1")
OTHER = generate_signing_key("someone-else")
JWKS = {"keys": [public_part(KEY)]}
BODY = json.dumps(
    {
        "event_id": "0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d",
        "event": "referral.status_changed",
        "referral_id": "0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5e",
        "status": "accepted",
        "occurred_at": "2026-11-25T10:00:00Z",
    }
).encode()
DUPLICATE_ALG = b'{"alg":"ES256","alg":"none","kid":"k"}'


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def header_b64(header: dict[str, Any]) -> str:
    return b64(json.dumps(header).encode())


def jwcrypto_detached(body: bytes, key: dict[str, Any], header: dict[str, Any]) -> str:
    token = jwcrypto_jws.JWS(body)
    token.add_signature(jwcrypto_jwk.JWK(**key), None, json.dumps(header))
    first, _, last = token.serialize(compact=True).split(".")
    return f"{first}..{last}"


def es256_detached(body: bytes, key: dict[str, Any], header: dict[str, Any]) -> str:
    """Sign with any header, even one jwcrypto refuses to produce."""
    private = load_private_key(key)
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    first = header_b64(header)
    der = private.sign(f"{first}.{b64(body)}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return f"{first}..{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class TestSignAndVerify:
    def test_a_signed_body_verifies(self) -> None:
        signature = sign_body(BODY, KEY)
        verify_body(BODY, signature, JWKS)

    def test_the_signature_is_detached_and_names_its_key(self) -> None:
        first, middle, last = sign_body(BODY, KEY).split(".")
        assert middle == ""
        header = json.loads(base64.urlsafe_b64decode(first + "=" * (-len(first) % 4)))
        assert header == {"alg": "ES256", "kid": "referral-webhooks-1"}
        assert len(base64.urlsafe_b64decode(last + "=" * (-len(last) % 4))) == 64

    def test_jwcrypto_verifies_our_signature(self) -> None:
        first, _, last = sign_body(BODY, KEY).split(".")
        token = jwcrypto_jws.JWS()
        token.deserialize(f"{first}.{b64(BODY)}.{last}")
        token.verify(jwcrypto_jwk.JWK(**public_part(KEY)), alg="ES256")
        assert token.payload == BODY

    def test_we_verify_a_jwcrypto_detached_signature(self) -> None:
        signature = jwcrypto_detached(BODY, KEY, {"alg": "ES256", "kid": KEY["kid"]})
        verify_body(BODY, signature, JWKS)

    def test_a_key_is_picked_by_kid_among_several(self) -> None:
        verify_body(BODY, sign_body(BODY, OTHER), {"keys": [public_part(KEY), public_part(OTHER)]})

    def test_generated_keys_are_es256_signing_keys(self) -> None:
        assert {KEY["kty"], KEY["crv"], KEY["use"], KEY["alg"]} == {"EC", "P-256", "sig", "ES256"}
        assert generate_signing_key()["kid"]

    @settings(max_examples=30, deadline=None)
    @given(body=st.binary(max_size=2048))
    def test_any_body_verifies_and_any_other_does_not(self, body: bytes) -> None:
        signature = sign_body(body, KEY)
        verify_body(body, signature, JWKS)
        with pytest.raises(WebhookSignatureError):
            verify_body(body + b"\x00", signature, JWKS)


class TestRefusals:
    def test_an_altered_body_fails(self) -> None:
        signature = sign_body(BODY, KEY)
        with pytest.raises(WebhookSignatureError, match="altered"):
            verify_body(BODY.replace(b"accepted", b"rejected"), signature, JWKS)

    def test_a_signature_by_another_key_under_our_kid_fails(self) -> None:
        impostor = {**OTHER, "kid": KEY["kid"]}
        with pytest.raises(WebhookSignatureError, match="another key"):
            verify_body(BODY, sign_body(BODY, impostor), JWKS)

    def test_a_key_the_sender_does_not_publish_fails(self) -> None:
        with pytest.raises(WebhookSignatureError, match="does not publish"):
            verify_body(BODY, sign_body(BODY, OTHER), JWKS)

    def test_alg_none_fails(self) -> None:
        signature = header_b64({"alg": "none", "kid": KEY["kid"]}) + ".."
        with pytest.raises(WebhookSignatureError, match="'none'"):
            verify_body(BODY, signature, JWKS)

    def test_hs256_keyed_with_the_public_key_fails(self) -> None:
        header = header_b64({"alg": "HS256", "kid": KEY["kid"]})
        secret = json.dumps(public_part(KEY)).encode()
        mac = hmac.new(secret, f"{header}.{b64(BODY)}".encode(), hashlib.sha256).digest()
        with pytest.raises(WebhookSignatureError, match="must use ES256"):
            verify_body(BODY, f"{header}..{b64(mac)}", JWKS)

    def test_a_missing_kid_fails(self) -> None:
        signature = jwcrypto_detached(BODY, KEY, {"alg": "ES256"})
        with pytest.raises(WebhookSignatureError, match="names no key"):
            verify_body(BODY, signature, JWKS)

    def test_unencoded_payload_option_fails(self) -> None:
        header = header_b64({"alg": "ES256", "kid": KEY["kid"], "b64": False, "crit": ["b64"]})
        with pytest.raises(WebhookSignatureError, match="b64"):
            verify_body(BODY, f"{header}..{b64(b'0' * 64)}", JWKS)

    def test_unknown_critical_extensions_fail(self) -> None:
        signature = es256_detached(
            BODY, KEY, {"alg": "ES256", "kid": KEY["kid"], "crit": ["exp"], "exp": 1}
        )
        with pytest.raises(WebhookSignatureError, match="crit"):
            verify_body(BODY, signature, JWKS)

    def test_a_signature_with_crit_b64_true_is_accepted(self) -> None:
        header = {"alg": "ES256", "kid": KEY["kid"], "b64": True, "crit": ["b64"]}
        verify_body(BODY, es256_detached(BODY, KEY, header), JWKS)

    def test_a_key_published_for_encryption_is_not_used_to_verify(self) -> None:
        jwks = {"keys": [{**public_part(KEY), "use": "enc"}]}
        with pytest.raises(WebhookSignatureError, match="not an ES256 signing key"):
            verify_body(BODY, sign_body(BODY, KEY), jwks)

    @pytest.mark.parametrize(
        ("signature", "problem"),
        [
            ("", "no signature"),
            ("abc", "header..signature"),
            (f"{header_b64({'alg': 'ES256', 'kid': 'x'})}.{b64(BODY)}.c2ln", "header..signature"),
            ("!!..c2ln", "base64url"),
            (f"{b64(b'not json')}..c2ln", "not valid JSON"),
            (f"{b64(b'[1]')}..c2ln", "JSON object"),
            (b64(DUPLICATE_ALG) + "..c2ln", "repeats a member"),
            ("A" * 5000, "too long"),
        ],
    )
    def test_malformed_signatures_fail_clearly(self, signature: str, problem: str) -> None:
        with pytest.raises(WebhookSignatureError, match=problem):
            verify_body(BODY, signature, JWKS)

    def test_a_signature_of_the_wrong_length_fails(self) -> None:
        first, _, last = sign_body(BODY, KEY).split(".")
        with pytest.raises(WebhookSignatureError, match="wrong length"):
            verify_body(BODY, f"{first}..{last[:-8]}", JWKS)

    @pytest.mark.parametrize("jwks", [{}, {"keys": "x"}, {"keys": [1, None]}, "jwks"])
    def test_a_broken_jwks_fails_clearly(self, jwks: Any) -> None:
        with pytest.raises(WebhookSignatureError):
            verify_body(BODY, sign_body(BODY, KEY), jwks)

    def test_signing_needs_a_kid_and_an_ec_key(self) -> None:
        with pytest.raises(InvalidKey, match="kid"):
            sign_body(BODY, {k: v for k, v in KEY.items() if k != "kid"})
        with pytest.raises(InvalidKey, match="P-256"):
            sign_body(BODY, generate_encryption_key("okp", curve="X25519"))
