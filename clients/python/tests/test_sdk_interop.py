"""Sealed sections from the SDK open with other JOSE implementations, and theirs with the SDK.

The SDK seals with jwcrypto; the other side is jwcrypto used directly (its own defaults) and
refex's own JWE code on `cryptography` primitives (shared.crypto), which shares no code with it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from jwcrypto import jwe, jwk
from jwcrypto.common import json_encode

from refex_client import SealingError, open_jwe, seal, section_aad
from shared.crypto import decrypt_with, encrypt_for, generate_encryption_key, public_part

REFERRAL_ID = "0192f0c4-7d1e-7cc3-9a55-3c1f2a3b4c5d"
AAD = section_aad(REFERRAL_ID, "contact")
SECTION = {"phone": "+234 803 555 0101", "address_on_return": "12 Marina, Lagos"}


@pytest.fixture
def keys() -> list[dict[str, Any]]:
    return [generate_encryption_key("clinic-enc-1"), generate_encryption_key("office-enc-1")]


def publics(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [public_part(key) for key in keys]


def jwcrypto_open(token: dict[str, Any], private: dict[str, Any]) -> bytes:
    reader = jwe.JWE()
    reader.deserialize(json.dumps(token), key=jwk.JWK(**private))
    return bytes(reader.payload)


class TestSdkToOthers:
    def test_jwcrypto_used_directly_opens_an_sdk_section_for_every_recipient(
        self, keys: list[dict[str, Any]]
    ) -> None:
        token = seal(json.dumps(SECTION).encode(), publics(keys), aad=AAD)
        for private in keys:
            assert json.loads(jwcrypto_open(token, private)) == SECTION

    def test_refex_own_implementation_opens_an_sdk_section(
        self, keys: list[dict[str, Any]]
    ) -> None:
        token = seal(json.dumps(SECTION).encode(), publics(keys), aad=AAD)
        for private in keys:
            assert json.loads(decrypt_with(token, private, aad=AAD.encode())) == SECTION

    def test_a_single_recipient_is_still_general_serialisation(
        self, keys: list[dict[str, Any]]
    ) -> None:
        token = seal(b"{}", publics(keys[:1]), aad=AAD)
        assert len(token["recipients"]) == 1 and "header" not in token
        assert decrypt_with(token, keys[0], aad=AAD.encode()) == b"{}"


class TestOthersToSdk:
    def test_the_sdk_opens_jwe_made_by_jwcrypto_with_its_defaults(
        self, keys: list[dict[str, Any]]
    ) -> None:
        made = jwe.JWE(
            json.dumps(SECTION).encode(),
            protected=json.dumps({"enc": "A256GCM"}),  # default spacing, unlike refex's
            aad=AAD.encode(),
        )
        for private in keys:
            header = json_encode({"alg": "ECDH-ES+A256KW", "kid": private["kid"]})
            made.add_recipient(jwk.JWK(**public_part(private)), header=header)
        token = json.loads(made.serialize())
        for private in keys:
            assert json.loads(open_jwe(token, private, aad=AAD)) == SECTION

    def test_the_sdk_opens_jwe_made_by_refex_own_implementation(
        self, keys: list[dict[str, Any]]
    ) -> None:
        token = encrypt_for(json.dumps(SECTION).encode(), publics(keys), aad=AAD.encode())
        assert json.loads(open_jwe(token, keys[1], aad=AAD)) == SECTION


class TestRefusals:
    def test_a_section_bound_to_another_category_does_not_open(
        self, keys: list[dict[str, Any]]
    ) -> None:
        token = seal(b"{}", publics(keys), aad=AAD)
        with pytest.raises(SealingError):
            open_jwe(token, keys[0], aad=section_aad(REFERRAL_ID, "health.physical"))

    def test_a_key_that_is_not_a_recipient_does_not_open(self, keys: list[dict[str, Any]]) -> None:
        token = seal(b"{}", publics(keys), aad=AAD)
        with pytest.raises(SealingError):
            open_jwe(token, generate_encryption_key("stranger"), aad=AAD)

    def test_an_altered_ciphertext_does_not_open(self, keys: list[dict[str, Any]]) -> None:
        token = seal(b'{"a": 1}', publics(keys), aad=AAD)
        token["ciphertext"] = token["ciphertext"][::-1]
        with pytest.raises(SealingError):
            open_jwe(token, keys[0], aad=AAD)
