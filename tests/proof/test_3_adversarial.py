"""Adversarial cases only a real stack can show (the rest live in tests/shared and tests/gateway).

A recipient entry swapped between two real referrals, a replayed private_key_jwt assertion, a
token signed by a signing key the gateway no longer publishes, and the open-referral areas the
contract fuzzer found answering 503.
"""

from __future__ import annotations

import base64
import copy
import secrets
import sqlite3
import time
from typing import Any

import httpx
import orjson
import pytest
from jwcrypto import jwk, jwt

from proof.harness import ProofStack, consent_and_refer
from shared.client import RefexError, open_payload
from shared.crypto import CryptoError
from shared.demo import HEALTH_PROVIDER_ORG

pytestmark = pytest.mark.system
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _referral(stack: ProofStack) -> dict[str, Any]:
    with stack.client("host_office") as host, stack.client("provider") as provider:
        subject = f"adv-{secrets.token_hex(10)}"
        sent = consent_and_refer(host, subject, f"Name {subject}")
        full: dict[str, Any] = provider.get(f"referrals/{sent['id']}")
        return full


def test_a_recipient_entry_swapped_between_two_real_referrals_does_not_decrypt(
    proof_stack: ProofStack,
) -> None:
    first, second = _referral(proof_stack), _referral(proof_stack)
    key = proof_stack.private_key(HEALTH_PROVIDER_ORG)
    assert open_payload(first, key)["identity_basic"]["given_name"].startswith("Name ")
    kid = key["kid"]
    forged = copy.deepcopy(second)
    theirs = next(r for r in first["payload"]["recipients"] if r["header"]["kid"] == kid)
    forged["payload"]["recipients"] = [
        theirs if r["header"]["kid"] == kid else r for r in forged["payload"]["recipients"]
    ]
    with pytest.raises(CryptoError):
        open_payload(forged, key)
    moved = copy.deepcopy(first)  # the whole payload of one referral under another's id
    moved["id"] = second["id"]
    with pytest.raises(CryptoError):
        open_payload(moved, key)


def _admin_headers(stack: ProofStack) -> dict[str, str]:
    with stack.client("admin") as admin:
        return {"Authorization": f"Bearer {admin.token()}"}


def test_a_replayed_private_key_jwt_assertion_is_refused(proof_stack: ProofStack) -> None:
    base, headers = proof_stack.base_url, _admin_headers(proof_stack)
    created = httpx.post(f"{base}/admin/clients", headers=headers, trust_env=False, json={
        "name": "assertion replay", "org_id": proof_stack.credentials()["auditor"]["org_id"],
        "roles": ["auditor"]}).json()["client"]  # fmt: skip
    key = jwk.JWK.generate(kty="EC", crv="P-256", kid="replay-1")
    registered = httpx.put(
        f"{base}/admin/clients/{created['client_id']}/jwks", headers=headers, trust_env=False,
        json={"keys": [{**key.export_public(as_dict=True), "alg": "ES256", "use": "sig"}]},
    )  # fmt: skip
    assert registered.status_code == 200, registered.text
    now = int(time.time())
    assertion = jwt.JWT(
        header={"alg": "ES256", "kid": "replay-1"},
        claims={"iss": created["client_id"], "sub": created["client_id"],
                "aud": f"{base}/oauth/token", "jti": secrets.token_hex(16), "iat": now,
                "exp": now + 60},
    )  # fmt: skip
    assertion.make_signed_token(key)
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion.serialize()}  # fmt: skip
    first = httpx.post(f"{base}/oauth/token", data=form, trust_env=False)
    replayed = httpx.post(f"{base}/oauth/token", data=form, trust_env=False)
    assert first.status_code == 200, first.text
    assert replayed.status_code == 401
    assert replayed.json()["error"] == "invalid_client"
    assert "already used" in replayed.json()["error_description"]


def test_a_token_signed_by_a_withdrawn_signing_key_is_refused(proof_stack: ProofStack) -> None:
    base = proof_stack.base_url
    # A token the gateway has not verified yet: one it already verified stays in its token cache
    # until it expires (at most 5 minutes), see the proof report.
    with proof_stack.client("auditor") as auditor:
        old_token = auditor.token()
    headers = _admin_headers(proof_stack)
    rotated = httpx.post(f"{base}/admin/signing-keys/rotate", headers=headers, trust_env=False)
    assert rotated.status_code == 200, rotated.text
    old_kid = _kid(old_token)
    path = proof_stack.database_urls["gateway"].split("///", 1)[1]
    with sqlite3.connect(path) as connection:  # the operator withdraws the old key now
        connection.execute(
            "UPDATE signing_key SET retire_at = ? WHERE kid = ?", ("2000-01-01 00:00:00", old_kid)
        )
    rotated = httpx.post(f"{base}/admin/signing-keys/rotate", headers=headers, trust_env=False)
    published = httpx.get(f"{base}/.well-known/jwks.json", trust_env=False).json()
    assert old_kid not in {k["kid"] for k in published["keys"]}
    refused = httpx.get(
        f"{base}/api/v1/referrals/stats",
        headers={"Authorization": f"Bearer {old_token}"},
        trust_env=False,
    )
    assert refused.status_code == 401
    assert refused.json()["detail"]
    assert _fresh_tokens_work_again(proof_stack, within_s=15)
    # The services' own tokens were signed by the withdrawn key too: they renew theirs on the
    # first 401 instead of failing every referral until their cached token expires.
    with proof_stack.client("host_office") as host:
        sent = consent_and_refer(host, f"withdrawn-key-{secrets.token_hex(4)}", "After rotation")
    assert sent["status"] == "requested"


def _fresh_tokens_work_again(stack: ProofStack, within_s: float) -> bool:
    """After two rotations in a row a service may briefly not know the newest key yet."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        with stack.client("host_office") as host:
            try:
                host.get("referrals", box="sent", limit=1)
                return True
            except RefexError:
                time.sleep(0.5)
    return False


def _kid(token: str) -> str:
    encoded = token.split(".")[0]
    return str(orjson.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))["kid"])


def test_an_open_referral_for_an_area_outside_its_country_is_a_422(
    proof_stack: ProofStack,
) -> None:
    with proof_stack.client("host_office") as host, pytest.raises(RefexError) as caught:
        host.post("referrals/open", {
            "service_category": "reception", "country": "SN", "admin_area": "HW-C",
            "requested_categories": ["contact"]})  # fmt: skip
    assert caught.value.status == 422
    assert "admin_area" in str(caught.value.problem)


def test_an_open_referral_for_a_country_the_directory_does_not_know_is_a_422(
    proof_stack: ProofStack,
) -> None:
    with proof_stack.client("host_office") as host, pytest.raises(RefexError) as caught:
        host.post("referrals/open", {
            "service_category": "mental_health_psychosocial", "country": "XE",
            "requested_categories": ["contact"]})  # fmt: skip
    assert caught.value.status == 422
    assert "XE" in caught.value.problem["detail"]
