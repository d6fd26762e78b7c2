"""JWE payload encryption: round trips, interoperability, and refusal of hostile input."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jwe as joserfc_jwe
from joserfc.jwk import ECKey
from jwcrypto import jwe as jwcrypto_jwe
from jwcrypto import jwk as jwcrypto_jwk

from shared.crypto import (
    CryptoError,
    DisallowedAlgorithm,
    EncryptedPayloadTooLarge,
    InvalidKey,
    MalformedPayload,
    NoUsableKey,
    UndecryptablePayload,
    b64url_encode,
    decrypt_with,
    encrypt_for,
    generate_encryption_key,
    public_jwk_problems,
    public_part,
    recipient_kids,
)

CANARY = b'{"name": "CANARY-Amina-Okafor", "phone": "+234-CANARY"}'
ALICE = generate_encryption_key("alice")
BOB = generate_encryption_key("bob", curve="X25519")
CAROL = generate_encryption_key("carol")
MALLORY = generate_encryption_key("mallory")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def to_alice_and_bob(plaintext: bytes = CANARY, **kwargs: Any) -> dict[str, Any]:
    return encrypt_for(plaintext, [public_part(ALICE), public_part(BOB)], **kwargs)


def jwcrypto_key(jwk: dict[str, Any]) -> jwcrypto_jwk.JWK:
    return jwcrypto_jwk.JWK(**jwk)


class TestRoundTrip:
    def test_single_recipient_gets_the_plaintext_back(self) -> None:
        jwe = encrypt_for(CANARY, [public_part(ALICE)])
        assert decrypt_with(jwe, ALICE) == CANARY

    def test_every_recipient_of_several_decrypts_with_its_own_key(self) -> None:
        jwe = encrypt_for(CANARY, [public_part(k) for k in (ALICE, BOB, CAROL)])
        assert [decrypt_with(jwe, key) for key in (ALICE, BOB, CAROL)] == [CANARY] * 3

    def test_the_output_has_the_agreed_shape(self) -> None:
        jwe = to_alice_and_bob()
        assert json.loads(unb64(jwe["protected"])) == {"enc": "A256GCM", "cty": "application/json"}
        headers = [entry["header"] for entry in jwe["recipients"]]
        assert [h["kid"] for h in headers] == ["alice", "bob"]
        assert {h["alg"] for h in headers} == {"ECDH-ES+A256KW"}
        assert [h["epk"]["crv"] for h in headers] == ["P-256", "X25519"]
        assert len(unb64(jwe["iv"])) == 12
        assert len(unb64(jwe["tag"])) == 16
        assert b"CANARY" not in json.dumps(jwe).encode()

    def test_each_encryption_uses_fresh_keys_and_iv(self) -> None:
        first, second = to_alice_and_bob(), to_alice_and_bob()
        assert first["iv"] != second["iv"]
        assert first["ciphertext"] != second["ciphertext"]
        assert first["recipients"][0]["header"]["epk"] != second["recipients"][0]["header"]["epk"]

    def test_a_key_not_among_the_recipients_is_told_so_by_kid(self) -> None:
        with pytest.raises(NoUsableKey) as caught:
            decrypt_with(to_alice_and_bob(), CAROL)
        assert "'carol'" in str(caught.value.detail)
        assert caught.value.status == 422

    def test_another_key_posing_under_a_recipient_kid_cannot_decrypt(self) -> None:
        impostor = {**MALLORY, "kid": "alice"}
        with pytest.raises(UndecryptablePayload):
            decrypt_with(to_alice_and_bob(), impostor)

    def test_aad_binds_the_payload_to_its_record(self) -> None:
        jwe = to_alice_and_bob(aad=b"referral-1")
        assert decrypt_with(jwe, BOB, aad=b"referral-1") == CANARY
        with pytest.raises(UndecryptablePayload, match="another record"):
            decrypt_with(jwe, BOB, aad=b"referral-2")
        with pytest.raises(UndecryptablePayload, match="not bound"):
            decrypt_with(to_alice_and_bob(), BOB, aad=b"referral-1")

    def test_a_one_mebibyte_payload_round_trips(self) -> None:
        payload = json.dumps({"document": "A" * (1024 * 1024)}).encode()
        assert decrypt_with(to_alice_and_bob(payload), ALICE) == payload

    def test_the_size_limit_is_the_callers(self) -> None:
        jwe = to_alice_and_bob(b"x" * 5000)
        with pytest.raises(EncryptedPayloadTooLarge, match="4096 bytes"):
            decrypt_with(jwe, ALICE, max_bytes=4096)
        assert decrypt_with(jwe, ALICE, max_bytes=5000) == b"x" * 5000

    def test_a_json_text_jwe_is_accepted_too(self) -> None:
        assert decrypt_with(json.dumps(to_alice_and_bob()), BOB) == CANARY

    def test_recipient_kids_lists_every_entry(self) -> None:
        assert recipient_kids(to_alice_and_bob()) == ["alice", "bob"]

    def test_no_recipients_means_no_usable_key(self) -> None:
        with pytest.raises(NoUsableKey, match="register a key"):
            encrypt_for(CANARY, [])

    def test_a_private_key_is_refused_as_a_recipient(self) -> None:
        with pytest.raises(InvalidKey, match="private parts"):
            encrypt_for(CANARY, [ALICE])

    def test_two_different_recipient_keys_with_one_kid_are_refused(self) -> None:
        with pytest.raises(InvalidKey, match="share the kid 'alice'"):
            encrypt_for(CANARY, [public_part(ALICE), {**public_part(CAROL), "kid": "alice"}])

    def test_the_same_key_listed_twice_gets_one_entry(self) -> None:
        jwe = encrypt_for(CANARY, [public_part(ALICE), public_part(BOB), public_part(ALICE)])
        assert recipient_kids(jwe) == ["alice", "bob"]
        assert decrypt_with(jwe, ALICE) == CANARY

    def test_an_unusable_recipient_key_is_named_with_what_is_wrong(self) -> None:
        with pytest.raises(InvalidKey, match="'bob' cannot be used: 'use' must be"):
            encrypt_for(CANARY, [public_part(ALICE), {**public_part(BOB), "use": "sig"}])

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(plaintext=st.binary(max_size=4096), aad=st.none() | st.binary(max_size=64))
    def test_any_plaintext_round_trips_to_every_recipient(
        self, plaintext: bytes, aad: bytes | None
    ) -> None:
        jwe = to_alice_and_bob(plaintext, aad=aad)
        assert decrypt_with(jwe, ALICE, aad=aad) == plaintext
        assert decrypt_with(json.dumps(jwe), BOB) == plaintext


class TestKeys:
    def test_generated_keys_are_private_and_registrable_once_public(self) -> None:
        for key in (ALICE, BOB):
            assert "d" in key
            assert key["use"] == "enc"
            assert key["alg"] == "ECDH-ES+A256KW"
            assert "d" not in public_part(key)
            assert public_jwk_problems(public_part(key)) == []

    def test_kid_defaults_to_the_rfc7638_thumbprint(self) -> None:
        key = generate_encryption_key()
        assert jwcrypto_key(public_part(key)).thumbprint() == key["kid"]

    @pytest.mark.parametrize(
        ("change", "problem"),
        [
            ({"d": ALICE["d"]}, "private parts"),
            ({"kid": None}, "'kid'"),
            ({"kid": "line\nbreak"}, "'kid'"),
            ({"kid": "k" * 201}, "'kid'"),
            ({"use": "sig"}, "'use'"),
            ({"use": None}, "'use'"),
            ({"alg": "RSA-OAEP"}, "'alg'"),
            ({"crv": "P-384"}, "not accepted"),
            ({"kty": "RSA"}, "not accepted"),
            ({"x": "not base64!"}, "base64url"),
            ({"x": b64(b"\x01" * 31)}, "32 bytes"),
            ({"y": b64(b"\x01" * 32)}, "not on the P-256 curve"),
            ({"y": None}, "coordinates"),
        ],
    )
    def test_unusable_public_keys_are_explained(self, change: dict[str, Any], problem: str) -> None:
        jwk = {k: v for k, v in {**public_part(ALICE), **change}.items() if v is not None}
        problems = public_jwk_problems(jwk)
        assert any(problem in str(p) for p in problems), problems

    def test_a_small_order_x25519_point_is_refused(self) -> None:
        jwk = {**public_part(BOB), "x": b64(b"\x00" * 32)}
        assert any("small-order" in str(p) for p in public_jwk_problems(jwk))

    def test_a_non_object_is_refused(self) -> None:
        assert public_jwk_problems("key")  # type: ignore[arg-type]

    def test_a_private_key_that_does_not_match_its_public_part_is_refused(self) -> None:
        with pytest.raises(InvalidKey, match="does not match"):
            decrypt_with(to_alice_and_bob(), {**ALICE, "d": CAROL["d"]})
        with pytest.raises(InvalidKey, match="does not match"):
            decrypt_with(to_alice_and_bob(), {**BOB, "x": public_part(ALICE)["x"]})

    def test_a_private_key_without_kid_is_refused(self) -> None:
        with pytest.raises(InvalidKey, match="no 'kid'"):
            decrypt_with(to_alice_and_bob(), {k: v for k, v in ALICE.items() if k != "kid"})


class TestInteroperability:
    @pytest.mark.parametrize("key", [ALICE, BOB], ids=["p256", "x25519"])
    def test_jwcrypto_decrypts_ours(self, key: dict[str, Any]) -> None:
        token = jwcrypto_jwe.JWE()
        token.deserialize(json.dumps(to_alice_and_bob(aad=b"ref")), key=jwcrypto_key(key))
        assert token.payload == CANARY

    def test_joserfc_decrypts_ours(self) -> None:
        jwe = encrypt_for(CANARY, [public_part(ALICE)])
        assert joserfc_jwe.decrypt_json(jwe, ECKey.import_key(ALICE)).plaintext == CANARY

    def test_ours_decrypts_jwcrypto_general_json_with_its_own_spacing(self) -> None:
        protected = json.dumps({"enc": "A256GCM", "cty": "application/json"})
        token = jwcrypto_jwe.JWE(CANARY, protected=protected)
        for key in (ALICE, BOB):
            header = json.dumps({"alg": "ECDH-ES+A256KW", "kid": key["kid"]})
            token.add_recipient(jwcrypto_key(public_part(key)), header=header)
        serialised = json.loads(token.serialize())
        assert b'", "' in unb64(serialised["protected"])  # spacing joserfc 1.8.0 trips over
        assert decrypt_with(serialised, ALICE) == CANARY
        assert decrypt_with(serialised, BOB) == CANARY

    def test_ours_decrypts_jwcrypto_output_with_party_info(self) -> None:
        protected = json.dumps(
            {"enc": "A256GCM", "apu": b64(b"host-office"), "apv": b64(b"clinic")}
        )
        token = jwcrypto_jwe.JWE(CANARY, protected=protected)
        header = json.dumps({"alg": "ECDH-ES+A256KW", "kid": "carol"})
        token.add_recipient(jwcrypto_key(public_part(CAROL)), header=header)
        assert decrypt_with(token.serialize(), CAROL) == CANARY

    def test_ours_decrypts_jwcrypto_flattened_json(self) -> None:
        protected = json.dumps({"alg": "ECDH-ES+A256KW", "enc": "A256GCM", "kid": "alice"})
        token = jwcrypto_jwe.JWE(CANARY, protected=protected)
        token.add_recipient(jwcrypto_key(public_part(ALICE)))
        assert decrypt_with(token.serialize(), ALICE) == CANARY

    def test_ours_decrypts_joserfc_general_json(self) -> None:
        message = joserfc_jwe.GeneralJSONEncryption({"enc": "A256GCM"}, CANARY, aad=b"ref")
        for key in (ALICE, CAROL):
            header = {"alg": "ECDH-ES+A256KW", "kid": key["kid"]}
            message.add_recipient(header, ECKey.import_key(public_part(key)))
        jwe = joserfc_jwe.encrypt_json(message, None)
        assert decrypt_with(jwe, CAROL, aad=b"ref") == CANARY


# --- adversarial input ------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], Any]


def protected_as(header: dict[str, Any] | bytes) -> Mutation:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()

    def mutate(jwe: dict[str, Any]) -> dict[str, Any]:
        jwe["protected"] = b64(raw)
        return jwe

    return mutate


def alice_header(**changes: Any) -> Mutation:
    def mutate(jwe: dict[str, Any]) -> dict[str, Any]:
        header = jwe["recipients"][0]["header"]
        header.update(changes)
        for name in [k for k, v in header.items() if v is None]:
            del header[name]
        return jwe

    return mutate


def field(name: str, value: Any) -> Mutation:
    def mutate(jwe: dict[str, Any]) -> dict[str, Any]:
        if value is None:
            del jwe[name]
        else:
            jwe[name] = value
        return jwe

    return mutate


def flip(name: str, index: int = 0) -> Mutation:
    def mutate(jwe: dict[str, Any]) -> dict[str, Any]:
        raw = bytearray(unb64(jwe[name]))
        raw[index] ^= 0x01
        jwe[name] = b64(bytes(raw))
        return jwe

    return mutate


def truncate_tag(jwe: dict[str, Any]) -> dict[str, Any]:
    jwe["tag"] = b64(unb64(jwe["tag"])[:12])
    return jwe


def flip_wrapped_key(jwe: dict[str, Any]) -> dict[str, Any]:
    raw = bytearray(unb64(jwe["recipients"][0]["encrypted_key"]))
    raw[5] ^= 0x80
    jwe["recipients"][0]["encrypted_key"] = b64(bytes(raw))
    return jwe


def respaced_protected(jwe: dict[str, Any]) -> dict[str, Any]:
    jwe["protected"] = b64(json.dumps(json.loads(unb64(jwe["protected"])), indent=1).encode())
    return jwe


def swapped_entry(jwe: dict[str, Any]) -> dict[str, Any]:
    other = encrypt_for(b'{"another": "referral"}', [public_part(ALICE)])
    jwe["recipients"][0] = other["recipients"][0]
    return jwe


def foreign_curve_epk(jwe: dict[str, Any]) -> dict[str, Any]:
    numbers = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    epk = {"kty": "EC", "crv": "P-384", "x": b64(numbers.x.to_bytes(48, "big"))}
    jwe["recipients"][0]["header"]["epk"] = {**epk, "y": b64(numbers.y.to_bytes(48, "big"))}
    return jwe


def off_curve_epk(jwe: dict[str, Any]) -> dict[str, Any]:
    epk = jwe["recipients"][0]["header"]["epk"]
    y = int.from_bytes(unb64(epk["y"]), "big")
    epk["y"] = b64(((y + 1) % 2**256).to_bytes(32, "big"))
    return jwe


def x25519_epk_for_p256_key(jwe: dict[str, Any]) -> dict[str, Any]:
    jwe["recipients"][0]["header"]["epk"] = jwe["recipients"][1]["header"]["epk"]
    return jwe


def small_order_epk_for_x25519_key(jwe: dict[str, Any]) -> dict[str, Any]:
    epk = {"kty": "OKP", "crv": "X25519", "x": b64(b"\x01" + b"\x00" * 31)}
    jwe["recipients"][1]["header"]["epk"] = epk
    return jwe


def duplicate_entry(jwe: dict[str, Any]) -> dict[str, Any]:
    jwe["recipients"].append(copy.deepcopy(jwe["recipients"][0]))
    return jwe


def flattened_and_general(jwe: dict[str, Any]) -> dict[str, Any]:
    jwe["encrypted_key"] = jwe["recipients"][0]["encrypted_key"]
    return jwe


def many_recipients(jwe: dict[str, Any]) -> dict[str, Any]:
    jwe["recipients"] = jwe["recipients"] * 40
    return jwe


def drop_from_entry(name: str) -> Mutation:
    def mutate(jwe: dict[str, Any]) -> dict[str, Any]:
        del jwe["recipients"][0][name]
        return jwe

    return mutate


def drop_epk(jwe: dict[str, Any]) -> dict[str, Any]:
    del jwe["recipients"][0]["header"]["epk"]
    return jwe


def epk_with_private_part(jwe: dict[str, Any]) -> dict[str, Any]:
    jwe["recipients"][0]["header"]["epk"]["d"] = ALICE["d"]
    return jwe


PROTECTED = {"enc": "A256GCM", "cty": "application/json"}
DUPLICATE_ENC = b'{"enc":"A256GCM","enc":"A128GCM","cty":"application/json"}'

ADVERSARIAL: dict[str, tuple[Mutation, type[CryptoError]]] = {
    "alg none": (alice_header(alg="none"), DisallowedAlgorithm),
    "alg dir": (alice_header(alg="dir"), DisallowedAlgorithm),
    "alg RSA1_5": (alice_header(alg="RSA1_5"), DisallowedAlgorithm),
    "alg ECDH-ES direct": (alice_header(alg="ECDH-ES"), DisallowedAlgorithm),
    "alg missing": (alice_header(alg=None), DisallowedAlgorithm),
    "alg not a string": (alice_header(alg=["ECDH-ES+A256KW"]), DisallowedAlgorithm),
    "enc unknown": (protected_as({**PROTECTED, "enc": "A256XYZ"}), DisallowedAlgorithm),
    "enc A128GCM": (protected_as({**PROTECTED, "enc": "A128GCM"}), DisallowedAlgorithm),
    "enc missing": (protected_as({"cty": "application/json"}), DisallowedAlgorithm),
    "zip header": (protected_as({**PROTECTED, "zip": "DEF"}), DisallowedAlgorithm),
    "crit header": (protected_as({**PROTECTED, "crit": ["exp"], "exp": 1}), DisallowedAlgorithm),
    "zip in recipient header": (alice_header(zip="DEF"), DisallowedAlgorithm),
    "wrong kid": (alice_header(kid="alice-old"), NoUsableKey),
    "missing kid": (alice_header(kid=None), NoUsableKey),
    "P-384 epk against P-256 key": (foreign_curve_epk, UndecryptablePayload),
    "X25519 epk against P-256 key": (x25519_epk_for_p256_key, UndecryptablePayload),
    "epk not on the curve": (off_curve_epk, UndecryptablePayload),
    "epk missing": (drop_epk, MalformedPayload),
    "epk with private part": (epk_with_private_part, MalformedPayload),
    "truncated tag": (truncate_tag, UndecryptablePayload),
    "altered tag": (flip("tag", 15), UndecryptablePayload),
    "altered ciphertext": (flip("ciphertext", 3), UndecryptablePayload),
    "altered iv": (flip("iv", 0), UndecryptablePayload),
    "iv of the wrong length": (field("iv", b64(b"\x00" * 16)), UndecryptablePayload),
    "altered wrapped key": (flip_wrapped_key, UndecryptablePayload),
    "altered protected header": (respaced_protected, UndecryptablePayload),
    "protected header with cty changed": (
        protected_as({**PROTECTED, "cty": "text/plain"}),
        UndecryptablePayload,
    ),
    "recipient entry swapped in": (swapped_entry, UndecryptablePayload),
    "aad added": (field("aad", b64(b"referral-9")), UndecryptablePayload),
    "duplicate members in protected": (protected_as(DUPLICATE_ENC), MalformedPayload),
    "huge protected header": (protected_as({**PROTECTED, "x": "A" * 20000}), MalformedPayload),
    "deeply nested protected header": (protected_as(b"[" * 3000 + b"]" * 3000), MalformedPayload),
    "protected not JSON": (protected_as(b"enc=A256GCM"), MalformedPayload),
    "protected is a list": (protected_as(b'["enc"]'), MalformedPayload),
    "protected with NaN": (protected_as(b'{"enc":"A256GCM","n":NaN}'), MalformedPayload),
    "protected not base64url": (field("protected", "eyJ!!"), MalformedPayload),
    "padded base64": (field("iv", "AAAAAAAAAAAAAAAA=="), MalformedPayload),
    "protected missing": (field("protected", None), MalformedPayload),
    "iv missing": (field("iv", None), MalformedPayload),
    "tag missing": (field("tag", None), MalformedPayload),
    "ciphertext missing": (field("ciphertext", None), MalformedPayload),
    "recipients missing": (field("recipients", None), MalformedPayload),
    "recipients empty": (field("recipients", []), MalformedPayload),
    "recipients not a list": (field("recipients", {"kid": "alice"}), MalformedPayload),
    "recipient entry not an object": (field("recipients", ["alice"]), MalformedPayload),
    "encrypted_key missing": (drop_from_entry("encrypted_key"), MalformedPayload),
    "header missing": (drop_from_entry("header"), NoUsableKey),
    "member in two headers": (protected_as({**PROTECTED, "kid": "alice"}), MalformedPayload),
    "unprotected not an object": (field("unprotected", "x"), MalformedPayload),
    "duplicate entry for one kid": (duplicate_entry, MalformedPayload),
    "flattened and general mixed": (flattened_and_general, MalformedPayload),
    "too many recipients": (many_recipients, MalformedPayload),
    "oversized ciphertext": (
        field("ciphertext", "A" * (6 * 1024 * 1024)),
        EncryptedPayloadTooLarge,
    ),
}


class TestAdversarialInput:
    @pytest.mark.parametrize("case", list(ADVERSARIAL))
    def test_is_refused_with_the_right_error(self, case: str) -> None:
        mutate, expected = ADVERSARIAL[case]
        jwe = mutate(to_alice_and_bob(aad=None))
        with pytest.raises(CryptoError) as caught:
            decrypt_with(jwe, ALICE)
        assert type(caught.value) is expected, caught.value.detail
        assert caught.value.status == 422
        assert "CANARY" not in str(caught.value.detail)
        assert str(caught.value.detail).endswith(".")

    def test_small_order_x25519_epk_is_refused(self) -> None:
        with pytest.raises(UndecryptablePayload):
            decrypt_with(small_order_epk_for_x25519_key(to_alice_and_bob()), BOB)

    @pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"a": 1, "a": 2}', "", "null"])
    def test_non_json_or_non_object_text_is_malformed(self, text: str) -> None:
        with pytest.raises(MalformedPayload):
            decrypt_with(text, ALICE)

    def test_a_non_object_is_malformed(self) -> None:
        with pytest.raises(MalformedPayload):
            decrypt_with(["jwe"], ALICE)  # type: ignore[arg-type]
        with pytest.raises(MalformedPayload):
            recipient_kids("nonsense")  # type: ignore[arg-type]

    def test_the_adversarial_suite_covers_at_least_twenty_cases(self) -> None:
        assert len(ADVERSARIAL) >= 20

    @settings(max_examples=150, deadline=None)
    @given(data=st.data())
    def test_any_single_character_change_is_refused_or_harmless(self, data: st.DataObject) -> None:
        text = json.dumps(to_alice_and_bob(b"short payload"))
        position = data.draw(st.integers(0, len(text) - 1))
        replacement = data.draw(st.sampled_from('A_-0{}[]",:x\\ '))
        mutated = text[:position] + replacement + text[position + 1 :]
        try:
            result = decrypt_with(mutated, ALICE)
        except CryptoError:
            return
        assert result == b"short payload"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else []
    )
    for key, child in items:
        found += paths_of(child, (*prefix, key))
    return found


def replaced(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    tree = copy.deepcopy(tree)
    parent = tree
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return tree


class TestStructuralFuzzing:
    @settings(max_examples=200, deadline=None)
    @given(data=st.data())
    def test_any_member_replaced_by_any_json_is_refused_or_harmless(
        self, data: st.DataObject
    ) -> None:
        jwe = to_alice_and_bob(b"short payload", aad=b"ref")
        path = data.draw(st.sampled_from(paths_of(jwe)))
        mutated = replaced(jwe, path, data.draw(JSON_VALUES))
        try:
            result = decrypt_with(mutated, ALICE)
        except CryptoError:
            return
        assert result == b"short payload"

    @settings(max_examples=200, deadline=None)
    @given(
        header=st.dictionaries(
            st.sampled_from(["alg", "enc", "zip", "crit", "kid", "epk", "apu", "apv", "cty"]),
            JSON_VALUES | st.sampled_from(["ECDH-ES+A256KW", "A256GCM", "alice"]),
            max_size=5,
        )
    )
    def test_any_protected_header_is_refused_with_a_crypto_error(
        self, header: dict[str, Any]
    ) -> None:
        jwe = to_alice_and_bob()
        jwe["protected"] = b64(json.dumps(header).encode())
        with pytest.raises(CryptoError):
            decrypt_with(jwe, ALICE)


def test_crypto_errors_carry_no_plaintext_even_when_the_payload_is_in_the_header() -> None:
    jwe = alice_header(alg=CANARY.decode())(to_alice_and_bob())
    with pytest.raises(DisallowedAlgorithm) as caught:
        decrypt_with(jwe, ALICE)
    assert "Okafor" not in str(caught.value.detail)


def test_base64url_helper_matches_the_standard_library() -> None:
    assert b64url_encode(b"\xfb\xff") == b64(b"\xfb\xff") == "-_8"


def test_non_ascii_aad_is_a_crypto_error_not_a_crash() -> None:
    """Found by the structural fuzzing: a non-base64url 'aad' must be refused cleanly."""
    jwe = to_alice_and_bob(b"short payload", aad=b"ref")
    jwe["aad"] = "r\x80f"
    with pytest.raises(CryptoError):
        decrypt_with(jwe, ALICE)
